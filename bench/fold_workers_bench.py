"""The fold spread over processes: `manage.py pbx` folding in its own thread, or `--fold-workers 1/2`.

    make bench                                  # --quick (BENCH_QUICK=1), SQLite
    DATABASE_URL=postgres://... DEBUG=1 .venv/bin/python bench/fold_workers_bench.py [--calls 400]

The replayed Asterisk 22 stream of telephony_bench.py (every event of a recorded click2call call,
copied with fresh ids, as the AMI bytes Asterisk writes) is fed to the live panoramisk connection of
three pbx processes (bench/pbx_child.py), one per mode, each owning a server of its own, in
interleaved rounds; a run ends when every event is folded and its typed events handed to the
app's lane. The originated legs are claimed for a company with a webhook first, as click2call does.
Prints events/s per mode, and checks each run recorded every call's legs once and ended them.
On SQLite the workers share one write lock: expect no gain there. Asserts nothing.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import telephony_bench  # sets Django up, so first

PbxChild = telephony_bench.PbxChild

from django.db import connection  # noqa: E402

from accounts.models import Company  # noqa: E402
from bench.click2call_services import services_choose  # noqa: E402
from pbxsim.harness import free_port, running_pbxsim  # noqa: E402
from telephony.models import CallRecord, PbxServer  # noqa: E402
from telephony.services import calls  # noqa: E402
from telephony.testing import contract_dialplans  # noqa: E402

MODES = {"in process (no flag)": 0, "--fold-workers 1": 1, "--fold-workers 2": 2}


def cpu_seconds(pid):
    """CPU time of a process and of its children still running (the fold workers), from /proc."""

    def own(p):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return own(pid), sum(own(c) for c in children)


def one_run(child, server, company, prefix, calls_count, tmp):
    path = Path(tmp) / f"{prefix}stream.ami"
    per_call = telephony_bench.stream_write(path, prefix, calls_count)
    CallRecord.objects.bulk_create(
        CallRecord(
            source=calls.ami_source(server.pk),
            uniqueid=f"{prefix}{n}-{telephony_bench.STREAM_ORIGINATED}",
            linkedid=f"{prefix}{n}-{telephony_bench.STREAM_ORIGINATED}",
            server=server,
            company=company,
            app="click2call",
        )
        for n in range(calls_count)
    )
    before = cpu_seconds(child.process.pid)
    result = child.ask("stream", path=str(path))
    after = cpu_seconds(child.process.pid)
    path.unlink()
    records = CallRecord.objects.filter(uniqueid__startswith=prefix)
    return {
        "rate": result["events"] / result["drained_seconds"],
        "events": calls_count * per_call,
        # CPU an event: the process that owns the AMI session, and the fold workers beside it.
        "parent_cpu": (after[0] - before[0]) / result["events"],
        "workers_cpu": (after[1] - before[1]) / result["events"],
        "legs": records.count(),
        "ended": records.filter(ended_at__isnull=False).count(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser.add_argument("--calls", type=int, default=100 if quick else 400, help="calls in each stream")
    parser.add_argument("--rounds", type=int, default=2 if quick else 3, help="interleaved rounds")
    args = parser.parse_args()

    sqlite = connection.vendor == "sqlite"
    if sqlite:
        os.environ["BENCH_EMBEDDED"] = "1"
    services = services_choose()
    connection.settings_dict["TEST"]["NAME"] = (
        str(Path(tempfile.mkdtemp()) / "bench.sqlite3") if sqlite else f"bench_fold_workers_{os.getpid()}"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    children = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            agi_port = free_port()
            with running_pbxsim(
                dialplans=contract_dialplans(Path(tmp), agi_port),
                manager_users=telephony_bench.MANAGER_USERS,
                time_scale=50,
            ) as sim:
                company = Company.objects.create(name="Bench fold workers", slug="bench-fold-workers")
                Company.objects.filter(pk=company.pk).update(webhook_url=telephony_bench.WEBHOOK_URL)
                servers = {}
                for number, (mode, workers) in enumerate(MODES.items()):
                    servers[mode] = PbxServer.objects.create(
                        name=f"bench-fold-{workers}",
                        ami_port=sim.port,
                        ami_username="platform",
                        ami_secret="platform-secret",
                        agi_bind_port=free_port() if number else agi_port,
                    )
                    children[mode] = PbxChild(servers[mode], fold_workers=workers)
                time.sleep(telephony_bench.SETTLE_SECONDS)
                runs = {mode: [] for mode in MODES}
                for r in range(args.rounds):
                    order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
                    for mode in order:
                        prefix = f"w{r}-{MODES[mode]}-"
                        runs[mode].append(
                            one_run(children[mode], servers[mode], company, prefix, args.calls, tmp)
                        )
                        time.sleep(telephony_bench.SETTLE_SECONDS)
                for child in children.values():
                    child.stop()
    finally:
        for child in children.values():
            child.stop()
    try:
        events = runs[next(iter(MODES))][0]["events"]
        print(
            f"Fold spread over processes, {services}: a replayed Asterisk 22 stream "
            f"({telephony_bench.STREAM_TRACE} x {args.calls:,} calls, {events:,} events, a company webhook), "
            f"median of {args.rounds} interleaved rounds, {os.cpu_count()} cores"
        )
        base = statistics.median(run["rate"] for run in runs[next(iter(MODES))])
        for mode, mode_runs in runs.items():
            rate = statistics.median(run["rate"] for run in mode_runs)
            last = mode_runs[-1]
            print(
                f"  {mode:22s} {rate:8,.0f} events/s ({rate / base:.2f}x; runs "
                + ", ".join(f"{run['rate']:,.0f}" for run in mode_runs)
                + f"); CPU an event {statistics.median(r['parent_cpu'] for r in mode_runs) * 1e6:.0f} µs "
                f"in the process owning the AMI session, "
                f"{statistics.median(r['workers_cpu'] for r in mode_runs) * 1e6:.0f} µs in its fold workers; "
                f"legs recorded {last['legs']:,}, ended {last['ended']:,}"
            )
    finally:
        if not sqlite:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        connection.close()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
