"""Scale-out: ten PBX servers (ten pbxsims) folded by one, two and three `manage.py pbx`
processes on one database, and where the CPU goes: the pbx processes, PostgreSQL's backends.

    make bench                                  # --quick (BENCH_QUICK=1)
    DATABASE_URL=postgres://... DEBUG=1 .venv/bin/python bench/scaleout_bench.py [--quick]
        [--calls-per-server N] [--rounds N] [--processes 1 2 3]

Makes a throw-away database (Django's test database; PostgreSQL from DATABASE_URL, else the CI's
local cluster when it answers, else SQLite, which it says), starts ten `manage.py pbxsim` and, for
each count of processes, that many `manage.py pbx --server ...` (DEBUG off, as in production),
the ten servers dealt out between them. Each round sends a burst of Originates to every server at
once (a phone that answers and hangs up) from sessions that take no events, and times each
server until all its calls are ended records; the counts of processes run in interleaved rounds.
CPU is read from /proc over each burst: every pbx process, the PostgreSQL backends serving the
bench's database, the simulators, and the machine. It asserts nothing.
"""

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.click2call_services import services_choose  # noqa: E402

SERVICES = services_choose()

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402

from pbxsim.amiwire import AmiConnection, ConnectionClosed, encode_action  # noqa: E402
from pbxsim.harness import free_port, running_pbxsim  # noqa: E402
from telephony.models import CallRecord, DialRoute, PbxServer  # noqa: E402
from telephony.selectors import pbx_server_is_up  # noqa: E402
from telephony.services.calls import FOLDED_EVENTS  # noqa: E402
from telephony.testing import contract_dialplans, database_url, side_by_side, wait_for  # noqa: E402

MANAGER_USERS = PROJECT_DIR / "tests" / "telephony" / "manager.conf"
SERVERS = 10
TIME_SCALE = 50
TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
MODES = ("live", "backlog")
MODE_SAYS = {
    "live": "live (folded as the simulators play the calls)",
    "backlog": "backlog (played while the pbx processes were stopped, folded from their SIGCONT)",
}
# Long leases: a pbx process stopped (SIGSTOP) while the simulators play a backlog keeps its servers.
LEASE_ENV = {"PBX_LEASE_SECONDS": "60", "PBX_LEASE_RENEW_SECONDS": "5"}


def originate(channel_id):
    # The demo phone 5551012 answers and hangs up: each call ends by itself and is folded whole.
    return [
        ("Action", "Originate"),
        ("Channel", "Local/5551012@phones"),
        ("Context", "platform-hold"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Async", "true"),
        ("ChannelId", channel_id),
        ("OtherChannelId", f"{channel_id};2"),
        ("ActionID", channel_id),
    ]


async def session(port, events):
    connection_ = await AmiConnection.open("127.0.0.1", port)
    await connection_.login(events=events)
    return connection_


async def send_calls(sims, prefix, count):
    """`count` Originates to each simulator at once, from sessions that take no events; returns
    when every one was answered (queued, as Async Originates are)."""

    async def one(number, sim):
        ami = await session(sim.port, "off")
        try:
            await ami.send_raw(
                b"".join(encode_action(originate(f"{prefix}{number}-{i}")) for i in range(count))
            )
            responses = 0
            while responses < count:
                frame = await ami.read_frame(timeout=60)
                responses += frame.is_response
        finally:
            await ami.close()

    await asyncio.gather(*(one(number, sim) for number, sim in enumerate(sims)))


async def events_per_call(sim, calls=20):
    """What one call costs in AMI events (all of them, and those the fold reads), counted by a
    session that takes every event, until the PBX has been quiet for two seconds."""
    listener = await session(sim.port, "on")
    await send_calls([sim], "calibrate-", calls)
    seen, folded = 0, 0
    try:
        while True:
            frame = await listener.read_frame(timeout=2)
            # The call's own events only (every one names its channel), not the session's.
            if frame.event is not None and any("calibrate-" in line for line in frame.lines):
                seen += 1
                folded += frame.event in FOLDED_EVENTS
    except (TimeoutError, ConnectionClosed):
        pass
    finally:
        await listener.close()
    return seen / calls, folded / calls


def cpu_seconds(pid) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK  # all but idle and iowait


def database_backends() -> list[int]:
    """PostgreSQL's backends serving the bench's database (not this process's own)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


class CpuWatch:
    """CPU seconds of each watched process between start() and stop(); backends that came later
    count from zero (one that came and went in between is missed: the pbx processes keep theirs)."""

    def __init__(self, pbx_pids, sim_pids):
        self.pbx_pids, self.sim_pids = pbx_pids, sim_pids

    def sample(self):
        pids = [*self.pbx_pids, *self.sim_pids, *database_backends()]
        return {pid: cpu_seconds(pid) for pid in pids}, machine_busy(), time.perf_counter()

    def start(self):
        self.first = self.sample()

    def stop(self):
        (before, busy_before, t0), (after, busy_after, t1) = self.first, self.sample()
        spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
        backends = [pid for pid in after if pid not in self.pbx_pids and pid not in self.sim_pids]
        return {
            "pbx": [spent[pid] for pid in self.pbx_pids],
            "postgres": sum(spent[pid] for pid in backends),
            "pbxsim": sum(spent[pid] for pid in self.sim_pids),
            "machine": busy_after - busy_before,
            "backends": len(backends),
            "wall": t1 - t0,
        }


def pbx_commands(groups):
    """`manage.py pbx --server ...` per group of servers, DEBUG off: no query log, as in production."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "LOG_LEVEL": "WARNING",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CALLCARDS_PIN_KEY": secrets.token_urlsafe(50),
        **LEASE_ENV,
    }
    return [
        subprocess.Popen(
            [sys.executable, "manage.py", "pbx", *[arg for s in group for arg in ("--server", s.name)]],
            cwd=PROJECT_DIR,
            env=env,
        )
        for group in groups
    ]


def stop(processes):
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def ended_by_server(prefix) -> dict[int, int]:
    rows = (
        CallRecord.objects.filter(uniqueid__startswith=prefix, ended_at__isnull=False)
        .values("server")
        .annotate(n=Count("id"))
    )
    return {row["server"]: row["n"] for row in rows}


def quiet(pids, seconds=0.5, longest=30.0):
    """Until the processes `pids` have gone `seconds` using (almost) no CPU: the simulators have
    played their calls out."""
    deadline = time.monotonic() + longest
    last = sum(cpu_seconds(pid) for pid in pids)
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = sum(cpu_seconds(pid) for pid in pids)
        if now - last < 0.02:
            return
        last = now


def burst(servers, sims, count, processes, prefix, events_each, backlog=False):
    """One round: `count` calls on every server at once, each server timed to its last record ended.
    With `backlog`, the pbx processes are stopped (SIGSTOP) while the simulators play the calls out,
    and timed from their SIGCONT: what they fold when the events wait for them, not the PBXs' pace."""
    groups = [servers[i :: len(processes)] for i in range(len(processes))]
    watch = CpuWatch([p.pid for p in processes], [sim.pid for sim in sims])
    done_at: dict[int, float] = {}
    if backlog:
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        try:
            asyncio.run(send_calls(sims, prefix, count))
            quiet([sim.pid for sim in sims])
        finally:
            watch.start()
            start = time.perf_counter()
            for process in processes:
                process.send_signal(signal.SIGCONT)
    else:
        watch.start()
        start = time.perf_counter()
        asyncio.run(send_calls(sims, prefix, count))
    deadline = start + 600
    while len(done_at) < len(servers) and time.perf_counter() < deadline:
        for server_id, n in ended_by_server(prefix).items():
            if n >= count and server_id not in done_at:
                done_at[server_id] = time.perf_counter() - start
        time.sleep(0.05)
    cpu = watch.stop()
    if len(done_at) < len(servers):
        raise RuntimeError(
            f"only {len(done_at)} of {len(servers)} servers folded their {count} calls in 600 s"
        )
    elapsed = max(done_at.values())
    per_process = [len(group) * count * events_each / max(done_at[s.pk] for s in group) for group in groups]
    return {
        "total": len(servers) * count * events_each / elapsed,
        "per_process": per_process,
        "elapsed": elapsed,
        **cpu,
    }


def show(n, figures, events, folded_share):
    total = figures["total"]
    pbx = figures["pbx"]
    wall = figures["wall"]
    print(
        f"  {n} pbx process(es): {total:,.0f} AMI events/s in all ({total * folded_share:,.0f} folded), "
        f"{figures['elapsed']:.2f} s; per process "
        + ", ".join(f"{rate:,.0f}" for rate in figures["per_process"])
        + " events/s"
    )
    print(
        "    CPU over the burst (% of one core): pbx "
        + " + ".join(f"{100 * s / wall:.0f}" for s in pbx)
        + f", PostgreSQL backends {100 * figures['postgres'] / wall:.0f}, pbxsims "
        f"{100 * figures['pbxsim'] / wall:.0f}, machine {100 * figures['machine'] / wall:.0f} "
        f"of {100 * CORES}; {figures['backends']:.0f} PostgreSQL sessions"
    )
    print(
        f"    CPU per AMI event: pbx {1e6 * sum(pbx) / events:.1f} us, PostgreSQL "
        f"{1e6 * figures['postgres'] / events:.1f} us (PostgreSQL's share "
        f"{100 * figures['postgres'] / max(figures['postgres'] + sum(pbx), 1e-9):.0f} %)"
    )


def run_rounds(args, servers, sims, count, rounds, results):
    """Every count of processes once a round, rounds interleaved; the figures go into `results`.
    Returns a call's AMI events, all and folded."""
    events, folded = asyncio.run(events_per_call(sims[0]))
    print(
        f"{SERVERS} pbxsims (time scale {TIME_SCALE}); a call (answered, hung up at once) is "
        f"{events:.0f} AMI events, {folded:.0f} of them folded; {count} calls at once per server "
        f"and round ({SERVERS * count * events:,.0f} events), {rounds} interleaved round(s)"
    )
    for round_ in range(rounds):
        for n in args.processes:
            processes = pbx_commands([servers[i::n] for i in range(n)])
            try:
                wait_for(
                    lambda: all(
                        pbx_server_is_up(s) for s in PbxServer.objects.filter(pk__in=[s.pk for s in servers])
                    ),
                    timeout=120,
                    interval=0.2,
                    what="every server up",
                )
                time.sleep(1.0)  # the processes' start-up work (reconcile, timers) is done
                for mode in MODES:
                    prefix = f"r{round_}n{n}{mode[0]}-"
                    figures = burst(servers, sims, count, processes, prefix, events, mode == "backlog")
                    results[mode, n].append(figures)
                    print(f"round {round_ + 1}, {MODE_SAYS[mode]}:")
                    show(n, figures, SERVERS * count * events, folded / events)
            finally:
                stop(processes)
    return events, folded


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK") == "1",
        help="one round of fewer calls (BENCH_QUICK=1: `make bench` sets it)",
    )
    parser.add_argument("--calls-per-server", type=int, help="calls sent at once to each server, per round")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of each count of processes")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3], help="counts of pbx processes")
    args = parser.parse_args()
    count = args.calls_per_server or (40 if args.quick else 200)
    rounds = args.rounds or (1 if args.quick else 3)

    sqlite = connection.vendor == "sqlite"
    connection.settings_dict["TEST"]["NAME"] = (
        str(Path(tempfile.mkdtemp()) / "bench.sqlite3") if sqlite else f"bench_scaleout_{os.getpid()}"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"{SERVICES}{' (--quick)' if args.quick else ''}; {CORES} cores")
    if sqlite:
        print("  SQLite: one write lock for every process, so the counts of processes compare little")
    results: dict[tuple[str, int], list[dict]] = {(m, n): [] for m in MODES for n in args.processes}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folders = [Path(tmp) / f"sim{number}" for number in range(SERVERS)]
            agi_ports = [free_port() for _ in folders]
            for folder in folders:
                folder.mkdir()
            simulators = (
                running_pbxsim(
                    dialplans=contract_dialplans(folder, agi_port),
                    manager_users=MANAGER_USERS,
                    time_scale=TIME_SCALE,
                )
                for folder, agi_port in zip(folders, agi_ports, strict=True)
            )
            with side_by_side(simulators) as sims:
                servers = []
                for number, (sim, agi_port) in enumerate(zip(sims, agi_ports, strict=True)):
                    server = PbxServer.objects.create(
                        name=f"bench-scaleout-{number}",
                        ami_port=sim.port,
                        ami_username="platform",
                        ami_secret="platform-secret",
                        agi_bind_port=agi_port,
                    )
                    DialRoute.objects.create(server=server, template="Local/{number}@phones")
                    servers.append(server)
                events, folded = run_rounds(args, servers, sims, count, rounds, results)
        print(f"Medians of {rounds} round(s), {SERVICES}:")
        for (mode, n), figures in results.items():
            if n == args.processes[0]:
                print(f" {MODE_SAYS[mode]}:")
            median = {
                key: statistics.median(f[key] for f in figures)
                for key in ("total", "elapsed", "postgres", "pbxsim", "machine", "wall", "backends")
            }
            median["pbx"] = [statistics.median(f["pbx"][i] for f in figures) for i in range(n)]
            median["per_process"] = [
                statistics.median(f["per_process"][i] for f in figures) for i in range(n)
            ]
            show(n, median, SERVERS * count * events, folded / events)
        paper(results, SERVERS * count * events)
    finally:
        if not sqlite:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        connection.close()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def paper(results, events):
    """Where PostgreSQL, not Python, becomes the limit, from the CPU each event costs each side."""
    if connection.vendor != "postgresql":
        print("On paper: needs PostgreSQL (DATABASE_URL) to say where the database becomes the limit")
        return
    print("On paper, from the CPU an AMI event costs (medians of every count of processes):")
    for mode in MODES:
        runs = [f for (m, _), figures in results.items() if m == mode for f in figures]
        pbx_us = statistics.median(1e6 * sum(f["pbx"]) / events for f in runs)
        pg_us = statistics.median(1e6 * f["postgres"] / events for f in runs)
        print(
            f"  {mode}: {pbx_us:.1f} us in the pbx processes, {pg_us:.1f} us in PostgreSQL's backends. "
            f"A pbx process is one core at most (one loop, the GIL): {1e6 / pbx_us:,.0f} events/s. A core "
            f"of PostgreSQL absorbs {1e6 / max(pg_us, 1e-9):,.0f} events/s, {pbx_us / max(pg_us, 1e-9):.1f} "
            "busy pbx processes' worth: past that many pbx cores per database core, PostgreSQL is the "
            "limit, not Python."
        )


if __name__ == "__main__":
    main()
