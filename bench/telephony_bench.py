"""The telephony layer's speed: the figures of issue 26's table, each beside its goal.

    make bench                                  # --quick (BENCH_QUICK=1), SQLite, a few minutes
    DEBUG=1 .venv/bin/python bench/telephony_bench.py [--quick] [--profile]
    DATABASE_URL=postgres://... DEBUG=1 .venv/bin/python bench/telephony_bench.py
    DEBUG=1 .venv/bin/python bench/telephony_bench.py --stream-only   # the replayed stream's rows only

Creates a throw-away database (Django's test database), starts `manage.py pbxsim` and
the pbx process (bench/pbx_child.py: the real PbxProcess with a tiny app) as their own
processes, as in production, and prints figures; it asserts nothing. Beside PostgreSQL the
child processes use Redis (REDIS_URL, or a redis-server of the bench's own), beside SQLite the
embedded broker (bench/click2call_services.py). The methods compared (bare panoramisk, the
facade, the handle; a webhook or none; the banner and a bare view) run in interleaved rounds
against the same processes. Nothing is timed under a profiler: `--profile` prints a cProfile
of a separate, untimed burst. Rows: the fold of a replayed Asterisk 22 stream (AMI bytes fed
to the live panoramisk connection) with and without a company webhook; a burst on pbxsim; a
typed event's delay at 200 and 1,000 calls/s; Originate round trips; the pbx process's RSS;
then, unless --quick, queues_bench.py's member -> Originate and click2call_bench.py's banner
POST vs a bare view (gunicorn, 32 connections), by their own functions.
"""

import argparse
import asyncio
import contextlib
import importlib.util
import io
import json
import os
import re
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

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from panoramisk import Manager  # noqa: E402

from accounts.models import Company  # noqa: E402
from bench.click2call_services import services_choose  # noqa: E402
from bench.pbx_child import RENAMED  # noqa: E402
from pbxsim.harness import free_port, running_pbxsim  # noqa: E402
from pbxsim.tracefile import ami_events  # noqa: E402
from telephony.facade import PbxFacade  # noqa: E402
from telephony.models import CallRecord, DialRoute, PbxServer, WebhookDelivery  # noqa: E402
from telephony.services import calls  # noqa: E402
from telephony.testing import contract_dialplans, database_url, wait_for  # noqa: E402

MANAGER_USERS = PROJECT_DIR / "tests" / "telephony" / "manager.conf"
BARE_PANORAMISK_ON_ASTERISK = "p50 1.93 ms"
# Between rounds: the previous round's calls end and are folded, so no round pays for another's.
SETTLE_SECONDS = 1.0
# The replayed stream: a two-leg call recorded on Asterisk 22.10.1, every event it sent.
STREAM_TRACE = "click2call-completed"
STREAM_ORIGINATED = "call-1-1"  # its originated leg's Uniqueid, which the claim would create
WEBHOOK_URL = "https://hooks.example.com/calls"  # never reached: no worker runs in the bench


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def originate_action(channel_id):
    return {
        "Action": "Originate",
        "Channel": "Local/5551012@phones",
        "Context": "platform-hold",
        "Exten": "s",
        "Priority": "1",
        "Async": "true",
        "ChannelId": channel_id,
        "OtherChannelId": f"{channel_id};2",
    }


class PbxChild:
    """bench/pbx_child.py as a subprocess: the pbx process, with commands on its stdin."""

    def __init__(self, server, fold_workers=0):
        self.process = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "bench" / "pbx_child.py"), str(server.pk), str(fold_workers)],
            cwd=PROJECT_DIR,
            env={**os.environ, "DATABASE_URL": database_url(), "LOG_LEVEL": "WARNING"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._answer()

    def _answer(self):
        for line in self.process.stdout:
            if line.startswith("BENCH "):
                return json.loads(line[6:])
        raise RuntimeError(f"the pbx process exited with {self.process.wait()}")

    def ask(self, cmd, **kwargs):
        self.process.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.write('{"cmd": "stop"}\n')
            self.process.stdin.flush()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Bare:
    """panoramisk with its own Manager (events on), on a loop of its own in this thread."""

    def __init__(self, port):
        self.loop = asyncio.new_event_loop()
        self.manager = Manager(
            loop=self.loop,
            host="127.0.0.1",
            port=port,
            username="platform",
            secret="platform-secret",
            events="on",
            ping_delay=3600,
        )
        self.events = []
        self.manager.register_event("*", lambda m, e: self.events.append(time.perf_counter()))
        self.loop.run_until_complete(self.manager.connect())

    def drain(self):
        # The loop runs only while this session is measured: read the other rounds' events first.
        self.loop.run_until_complete(asyncio.sleep(0.2))

    def round_trips(self, prefix, n):
        async def run():
            times = []
            for i in range(n):
                start = time.perf_counter()
                response = await self.manager.send_action(originate_action(f"{prefix}{i}"))
                times.append(time.perf_counter() - start)
                assert response[-1]["Event"] == "OriginateResponse", response
            return times

        self.drain()
        return self.loop.run_until_complete(run())

    def burst(self, prefix, n):
        async def run():
            await asyncio.gather(
                *(self.manager.send_action(originate_action(f"{prefix}{i}")) for i in range(n))
            )

        self.drain()
        self.events.clear()
        self.loop.run_until_complete(run())

    def close(self):
        self.manager.close()
        self.loop.close()


def facade_round_trips(facade, server, prefix, n):
    times = []
    for i in range(n):
        start = time.perf_counter()
        outcome = facade.originate(
            server=server, channel_id=f"{prefix}{i}", number="5551012", context="platform-hold", wait=True
        )
        times.append(time.perf_counter() - start)
        assert outcome.outcome == "answered", outcome
    return times


def round_trips(table, bare, facade, child, server, rounds, per_round):
    """Each method `per_round` sequential calls per round; the order turns each round."""
    methods = {
        "bare panoramisk": lambda prefix: bare.round_trips(prefix, per_round),
        "facade (wait)": lambda prefix: facade_round_trips(facade, server, prefix, per_round),
        "handle (wait)": lambda prefix: child.ask("originate", prefix=prefix, calls=per_round)["times"],
    }
    names = list(methods)
    times = {name: [] for name in names}
    for r in range(rounds):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            times[name] += methods[name](f"rt{r}-{name.split()[0]}-")
            time.sleep(SETTLE_SECONDS)
    print(f"Originate round trip (request sent to OriginateResponse), {rounds} rounds x {per_round} calls:")
    base = statistics.median(times["bare panoramisk"])
    base99 = percentile(times["bare panoramisk"], 0.99)
    for name in names:
        p50, p99 = statistics.median(times[name]), percentile(times[name], 0.99)
        line = f"  {name:16s} p50 {ms(p50):>9s}  p99 {ms(p99):>9s}"
        if name != "bare panoramisk":
            line += f"   {p50 / base:.1f}x bare at p50, {p99 / base99:.1f}x at p99"
        else:
            line += f"   (real Asterisk 22: {BARE_PANORAMISK_ON_ASTERISK})"
        print(line)
    bare_p50 = f"bare p50 {ms(base)}"
    handle, facade_ = statistics.median(times["handle (wait)"]), statistics.median(times["facade (wait)"])
    table.add(
        "Originate, in-process handle vs bare panoramisk",
        f"{handle / base:.1f}x at p50 ({ms(handle)}, {bare_p50})",
        "within 1.3x",
    )
    table.add(
        "Originate, sync facade with wait=True vs bare",
        f"{facade_ / base:.1f}x at p50 ({ms(facade_)}, {bare_p50})",
        "within 2x",
    )


def call_event_latency(table, child, rates, seconds):
    print(
        "Call event to the app's on_call_event after the commit (from `_received`; recorded "
        "click2call-completed calls replayed into the link's fold queue):"
    )
    goals = {200: ("p99", 0.050, "p99 under 50 ms"), 1000: ("p99", 0.200, "keeps up: p99 under 200 ms")}
    for rate in rates:
        result = child.ask("replay", rate=rate, seconds=seconds)
        lat = result["latencies"]
        behind = result["drained_seconds"] - result["fed_seconds"]
        p50, p99 = statistics.median(lat), percentile(lat, 0.99)
        print(
            f"  {rate:5d} calls/s ({result['events'] / result['fed_seconds']:,.0f} events/s for "
            f"{result['fed_seconds']:.1f} s): p50 {ms(p50)}, p99 {ms(p99)}, "
            f"max {ms(max(lat))} over {len(lat)} typed events; all folded "
            f"{behind:.2f} s after the last; "
            f"fold thread busy {result['fold_busy']:.0%} "
            f"({result['folded_events'] / max(1, result['fold_batches']):.0f} events a batch)"
        )
        goal = goals.get(rate, (None, None, "-"))[2]
        table.add(
            f"typed event to the app's hook at {rate:,} calls/s (calls started over {seconds:g} s)",
            f"p50 {ms(p50)}, p99 {ms(p99)}; folded {behind:.2f} s after the last",
            goal,
        )
        time.sleep(SETTLE_SECONDS)


def fold_burst(table, bare, child, burst, prefix="fold-"):
    """A burst of real calls on pbxsim; the records are complete when the pbx process folded them
    all. Timed without a profiler: the figure is the platform's, not cProfile's."""
    start = time.perf_counter()
    bare.burst(prefix, burst)
    sent = time.perf_counter()
    wait_for(
        lambda: (
            CallRecord.objects.filter(uniqueid__startswith=prefix, ended_at__isnull=False).count() == burst
        ),
        timeout=300,
        interval=0.05,
        what="all call records",
    )
    done = time.perf_counter()
    bare.drain()
    last_event = max(bare.events)
    events = len(bare.events)
    rate = events / (done - start)
    print(
        f"Fold end to end, a burst of {burst} calls on pbxsim ({connection.vendor}): every record "
        f"complete {done - start:.2f} s after the first Originate: {events} AMI events (as a bare "
        f"session saw them), {rate:,.0f} events/s"
    )
    print(
        f"  pbxsim: all Originates answered after {sent - start:.2f} s, its last event after "
        f"{last_event - start:.2f} s"
    )
    if table is not None:
        table.add(
            f"a burst of {burst} calls on pbxsim (no profiler)",
            f"{rate:,.0f} events/s ({events} events in {done - start:.2f} s; pbxsim's last event "
            f"at {last_event - start:.2f} s)",
            "20,000 events/s",
        )


def fold_profile(bare, child, burst):
    """The same burst again, untimed, with cProfile on in the pbx process."""
    child.ask("profile", on=True)
    fold_burst(None, bare, child, burst, prefix="prof-")
    profile = child.ask("profile", on=False)
    print("  (the burst above ran under cProfile: its rate is not the platform's)")
    print("  cProfile, fold thread (by own time; SimpleQueue.get is its wait for work):")
    print(indent(profile["fold"]))
    print("  cProfile, the pbx process's loop (by own time; epoll.poll is its wait for I/O):")
    print(indent(profile["loop"]))


def stream_write(path, prefix, calls_count):
    """`calls_count` copies of a call recorded on Asterisk 22 (click2call-completed: every event it
    sent, folded or not), each with its own ids, as the AMI bytes Asterisk writes."""
    # Stamped as `timestampevents = yes` (the contract's manager.conf) stamps them: the call's own
    # spacing, the calls 1 ms apart.
    base = ami_events(STREAM_TRACE, epoch=time.time())
    frames = []
    for n in range(calls_count):
        for event in base:
            frames.append(
                "".join(
                    f"{k}: {f'{prefix}{n}-{v}' if k in RENAMED else v}\r\n"
                    for k, v in event.items()
                    if k not in ("_received", "Timestamp")
                )
                + f"Timestamp: {event['_received'] + n / 1000:.6f}\r\n\r\n"
            )
    Path(path).write_text("".join(frames))
    return len(base)


def fold_stream(table, child, server, company, calls_count, rounds, tmp):
    """The replayed stream with and without the company's webhook, in interleaved rounds. The
    originated leg of each call is claimed for the company beforehand, as click2call's claim does,
    so its legs' events are the company's (and POSTed to its webhook when it has one)."""
    results = {"with a webhook": [], "no webhook": []}
    per_call = 0
    for r in range(rounds):
        order = list(results) if r % 2 == 0 else list(reversed(results))
        for name in order:
            prefix = f"s{r}{name[0]}-"
            path = Path(tmp) / f"{prefix}stream.ami"
            per_call = stream_write(path, prefix, calls_count)
            CallRecord.objects.bulk_create(
                CallRecord(
                    source=calls.ami_source(server.pk),
                    uniqueid=f"{prefix}{n}-{STREAM_ORIGINATED}",
                    linkedid=f"{prefix}{n}-{STREAM_ORIGINATED}",
                    server=server,
                    company=company,
                    app="click2call",
                )
                for n in range(calls_count)
            )
            Company.objects.filter(pk=company.pk).update(
                webhook_url=WEBHOOK_URL if name == "with a webhook" else ""
            )
            result = child.ask("stream", path=str(path))
            ended = CallRecord.objects.filter(uniqueid__startswith=prefix, ended_at__isnull=False).count()
            deliveries = WebhookDelivery.objects.filter(payload__uniqueid__startswith=prefix).count()
            result.update(ended=ended, deliveries=deliveries)
            results[name].append(result)
            path.unlink()
            time.sleep(SETTLE_SECONDS)
    events = calls_count * per_call
    print(
        f"Fold end to end, a replayed Asterisk 22 stream ({STREAM_TRACE} x {calls_count:,} calls, "
        f"{events:,} events, fed to the live panoramisk connection) on {connection.vendor}, {rounds} rounds:"
    )
    figures = {}
    for name, runs in results.items():
        rates = [run["events"] / run["drained_seconds"] for run in runs]
        figures[name] = statistics.median(rates)
        print(
            f"  {name:15s} median {figures[name]:,.0f} events/s (runs: "
            + ", ".join(f"{rate:,.0f}" for rate in rates)
            + f"); records ended {runs[-1]['ended']:,}, webhook deliveries {runs[-1]['deliveries']:,}, "
            f"fold thread busy {runs[-1]['fold_busy']:.0%}"
        )
    table.add(
        f"fold end to end, a replayed Asterisk 22 stream of {calls_count:,} calls ({events:,} events)",
        f"{figures['with a webhook']:,.0f} events/s with a webhook, {figures['no webhook']:,.0f} with none",
        "20,000 events/s on PostgreSQL, with a webhook",
    )


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def indent(text):
    return "\n".join("    " + line for line in text.splitlines())


class Table:
    """The issue's table: each row as measured in this run, beside its goal."""

    def __init__(self):
        self.rows = []

    def add(self, figure, now, goal):
        self.rows.append((figure, now, goal))

    def print(self, title):
        print(f"\n{title}\n\n| figure | now | goal |\n| --- | --- | --- |")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")


def queue_to_originate(table, rounds):
    """queues_bench.py's end-to-end part, as it is; its report is read into the table."""
    from bench import queues_bench

    print_report = queues_bench.report
    kept = []

    def report(label, results):
        print_report(label, results)
        kept.append((label, results))

    queues_bench.report = report
    try:
        queues_bench.end_to_end(rounds, False)
    finally:
        queues_bench.report = print_report
    for label, results in kept:
        total = [r["written"] - r["join_returned"] for r in results]
        claim = [r["claim"][1] - r["claim"][0] for r in results]
        table.add(
            # queues_bench times from member_join's return, which the registration follows.
            f"queue member joined -> agent Originate written ({label.split(' (')[0]})",
            f"p50 {ms(statistics.median(total))}, p99 {ms(percentile(total, 0.99))} "
            f"(offer_claim alone p50 {ms(statistics.median(claim))}; {len(results)} callers)",
            "p99 under 5 ms",
        )


def banner_vs_bare(table, rounds, seconds):
    """click2call_bench.py's part (a), as it is (gunicorn, 32 connections, interleaved rounds)."""
    if importlib.util.find_spec("gunicorn") is None:
        print("banner POST vs a bare view: gunicorn is not in this venv, row left out")
        return
    from bench import click2call_bench  # its services were chosen by main(), before it is imported

    # queues_bench's company and server, if it ran, hold the names campaign_create takes (and
    # their calls protect them from a delete).
    Company.objects.filter(slug="bench").update(name="Bench queues", slug="bench-queues")
    PbxServer.objects.filter(name="bench").update(name="bench-queues")
    campaign = click2call_bench.campaign_create()
    connection.close()  # gunicorn's workers write to the same database
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        click2call_bench.bench_banner(campaign, rounds=rounds, seconds=seconds)
    print(out.getvalue(), end="")
    rates = dict(re.findall(r"^\s+(bare|banner)\s+([\d.]+) req/s", out.getvalue(), re.M))
    p99 = re.search(r"^\s+banner\s+.*?p99 ([\d.]+ ms)", out.getvalue(), re.M)
    if "bare" in rates and "banner" in rates and p99:
        table.add(
            f"banner POST vs a bare Django JSON view, gunicorn, {click2call_bench.CONNECTIONS} connections",
            f"{float(rates['banner']) / float(rates['bare']):.0%} of the bare rate "
            f"({rates['banner']} vs {rates['bare']} req/s), p99 {p99.group(1)}",
            "30 %, p99 under 50 ms",
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK") == "1",
        help="fewer rounds and calls, no queues or banner row (BENCH_QUICK=1: `make bench` sets it)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile a separate, untimed burst")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (Originate, the stream)")
    parser.add_argument("--calls", type=int, help="sequential originates per method and round")
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[200, 1000], help="calls/s for the event delay"
    )
    parser.add_argument("--seconds", type=float, help="length of each replay")
    parser.add_argument("--burst", type=int, default=600, help="calls at once on pbxsim")
    parser.add_argument("--stream-calls", type=int, help="calls in the replayed Asterisk stream")
    parser.add_argument(
        "--stream-only", action="store_true", help="only the replayed stream's rows (the fold's own speed)"
    )
    parser.add_argument("--queue-rounds", type=int, help="measured callers per caller count (queues)")
    parser.add_argument("--banner-seconds", type=float, help="length of one banner/bare round")
    parser.add_argument(
        "--only", choices=["originate"], help="only these rows (Originate: handle and facade vs bare)"
    )
    args = parser.parse_args()
    quick = args.quick
    rounds = args.rounds or (2 if quick else 3)
    per_round = args.calls or (30 if quick else 100)
    seconds = args.seconds or (2.0 if quick else 3.0)
    # 400 calls of 94 events: about the 36,002 events of the stream (2,000 calls of 18).
    stream_calls = args.stream_calls or (100 if quick else 400)
    queue_rounds = args.queue_rounds or (0 if quick else 50)
    banner_seconds = args.banner_seconds or (0 if quick else 4.0)

    # A name of its own: a test run on the same PostgreSQL keeps its test database.
    sqlite = connection.vendor == "sqlite"
    # The broker and cache of the child processes (the pbx process's webhook tasks, gunicorn):
    # production's Redis beside PostgreSQL, the embedded ones beside SQLite, like with like.
    if sqlite:
        os.environ["BENCH_EMBEDDED"] = "1"
    services = services_choose()
    connection.settings_dict["TEST"]["NAME"] = (
        str(Path(tempfile.mkdtemp()) / "bench.sqlite3") if sqlite else f"bench_telephony_{os.getpid()}"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"{services}{' (--quick)' if quick else ''}")
    table = Table()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            agi_port = free_port()
            with running_pbxsim(
                dialplans=contract_dialplans(Path(tmp), agi_port), manager_users=MANAGER_USERS, time_scale=50
            ) as sim:
                server = PbxServer.objects.create(
                    name="bench-telephony",
                    ami_port=sim.port,
                    ami_username="platform",
                    ami_secret="platform-secret",
                    agi_bind_port=agi_port,
                )
                DialRoute.objects.create(server=server, template="Local/{number}@phones")
                company = Company.objects.create(name="Bench telephony", slug="bench-telephony")
                child = PbxChild(server)
                bare = Bare(sim.port)
                facade = PbxFacade()
                try:
                    time.sleep(SETTLE_SECONDS)
                    idle = rss_mib(child.process.pid)
                    if args.only != "originate":
                        fold_stream(table, child, server, company, stream_calls, rounds, tmp)
                        if args.stream_only:
                            return
                        fold_burst(table, bare, child, args.burst)
                        call_event_latency(table, child, args.rates, seconds)
                    round_trips(table, bare, facade, child, server, rounds, per_round)
                    after = rss_mib(child.process.pid)
                    calls_seen = CallRecord.objects.filter(server=server, parent__isnull=True).count()
                    table.add(
                        f"pbx process RSS idle / after {calls_seen:,} calls",
                        f"{idle:.0f} / {after:.0f} MiB (bench app only)",
                        "under 100 MiB idle; flat after the first thousand calls",
                    )
                    if args.profile:
                        fold_profile(bare, child, args.burst)
                finally:
                    facade.close()
                    bare.close()
                    child.stop()
        if args.only:
            print(f"only the {args.only} rows (--only)")
        elif queue_rounds:
            queue_to_originate(table, queue_rounds)
        else:
            print("queue member -> agent Originate: not run with --quick (queues_bench.py prints it)")
        if banner_seconds and not args.only:
            banner_vs_bare(table, rounds, banner_seconds)
        elif not args.only:
            print("banner POST vs a bare view: not run with --quick (click2call_bench.py prints it)")
        table.print(f"The issue's table, measured now on this machine; {services}:")
    finally:
        if not sqlite:
            # Threads of this run (the queues part's pbx process, the facade) may still hold a
            # session to the throw-away database, which PostgreSQL will not drop under them.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        connection.close()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
