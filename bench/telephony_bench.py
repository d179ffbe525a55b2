"""The telephony layer against the simulator: Originate round trips, the delay of a call
event to an app, and how fast AMI events become call records.

    make bench                                  # SQLite (the embedded default)
    DATABASE_URL=postgres://... DEBUG=1 .venv/bin/python bench/telephony_bench.py

Creates a throw-away database (Django's test database), starts `manage.py pbxsim` and
the pbx process (bench/pbx_child.py: the real PbxProcess with a tiny app) as their own
processes, as in production, and prints figures; it asserts nothing. The methods
compared run in interleaved rounds against the same processes.
"""

import argparse
import asyncio
import json
import os
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

from bench.pbx_child import RENAMED  # noqa: E402
from pbxsim.harness import free_port, running_pbxsim  # noqa: E402
from pbxsim.tracefile import ami_events  # noqa: E402
from telephony.facade import PbxFacade  # noqa: E402
from telephony.models import CallRecord, DialRoute, PbxServer  # noqa: E402
from telephony.process import FOLD_BATCH  # noqa: E402
from telephony.services import calls  # noqa: E402
from telephony.testing import contract_dialplans, database_url, wait_for  # noqa: E402

MANAGER_USERS = PROJECT_DIR / "tests" / "telephony" / "manager.conf"
BARE_PANORAMISK_ON_ASTERISK = "p50 1.93 ms"
# Between rounds: the previous round's calls end and are folded, so no round pays for another's.
SETTLE_SECONDS = 1.0


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

    def __init__(self, server):
        self.process = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "bench" / "pbx_child.py"), str(server.pk)],
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


def round_trips(bare, facade, child, server, rounds, per_round):
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
    goals = {"facade (wait)": "goal 2x", "handle (wait)": "goal 1.3x"}
    for name in names:
        p50, p99 = statistics.median(times[name]), percentile(times[name], 0.99)
        line = f"  {name:16s} p50 {ms(p50):>9s}  p99 {ms(p99):>9s}"
        if name in goals:
            line += f"   {p50 / base:.1f}x bare at p50, {p99 / base99:.1f}x at p99 ({goals[name]})"
        else:
            line += f"   (real Asterisk 22: {BARE_PANORAMISK_ON_ASTERISK})"
        print(line)


def call_event_latency(child, rates, seconds):
    print(
        "Call event to the app's on_call_event after the commit (from `_received`; recorded "
        "click2call-completed calls replayed into the link's fold queue):"
    )
    for rate in rates:
        result = child.ask("replay", rate=rate, seconds=seconds)
        lat = result["latencies"]
        print(
            f"  {rate:5d} calls/s ({result['events'] / result['fed_seconds']:,.0f} events/s for "
            f"{result['fed_seconds']:.1f} s): p50 {ms(statistics.median(lat))}, "
            f"p99 {ms(percentile(lat, 0.99))}, "
            f"max {ms(max(lat))} over {len(lat)} typed events; all folded "
            f"{result['drained_seconds'] - result['fed_seconds']:.2f} s after the last; "
            f"fold thread busy {result['fold_busy']:.0%} "
            f"({result['folded_events'] / max(1, result['fold_batches']):.0f} events a batch)"
        )
        time.sleep(SETTLE_SECONDS)


def fold_end_to_end(bare, child, burst):
    """A burst of real calls on pbxsim; the records are complete when the pbx process folded them all."""
    child.ask("profile", on=True)
    start = time.perf_counter()
    bare.burst("fold-", burst)
    sent = time.perf_counter()
    wait_for(
        lambda: (
            CallRecord.objects.filter(uniqueid__startswith="fold-", ended_at__isnull=False).count() == burst
        ),
        timeout=300,
        interval=0.05,
        what="all call records",
    )
    done = time.perf_counter()
    bare.drain()
    last_event = max(bare.events)
    profile = child.ask("profile", on=False)
    events = profile["folded_events"]
    print(
        f"Fold end to end, a burst of {burst} calls on pbxsim ({connection.vendor}): {events} folded events, "
        f"every record complete {done - start:.2f} s after the first Originate: "
        f"{events / (done - start):,.0f} events/s (target 5,000)"
    )
    print(
        f"  pbxsim: all Originates answered after {sent - start:.2f} s, its last event after "
        f"{last_event - start:.2f} s ({len(bare.events)} events to a session); fold thread busy "
        f"{profile['fold_seconds']:.2f} s ({profile['fold_busy']:.0%} of the window, "
        f"{events / max(1, profile['fold_batches']):.0f} events a batch)"
    )
    print("  cProfile, fold thread (by own time; SimpleQueue.get is its wait for work):")
    print(indent(profile["fold"]))
    print("  cProfile, the pbx process's loop (by own time; epoll.poll is its wait for I/O):")
    print(indent(profile["loop"]))


def fold_alone(server, copies=200):
    """The folding service alone, in this process, on the events real Asterisk sent for a
    two-leg call, in batches of 100 and of the pbx process's largest (FOLD_BATCH)."""
    base = [
        e for e in ami_events("click2call-completed", epoch=time.time()) if e["Event"] in calls.FOLDED_EVENTS
    ]
    for batch in (100, FOLD_BATCH):
        events = [
            {k: f"cap{batch}-{n}-{v}" if k in RENAMED else v for k, v in event.items()}
            for n in range(copies)
            for event in base
        ]
        start = time.perf_counter()
        for i in range(0, len(events), batch):
            calls.call_events_fold(server_id=server.pk, events=events[i : i + batch])
        elapsed = time.perf_counter() - start
        print(
            f"  folding alone, in this process (recorded two-leg calls, batches of {batch}): "
            f"{len(events) / elapsed:,.0f} events/s"
        )


def indent(text):
    return "\n".join("    " + line for line in text.splitlines())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of Originate round trips")
    parser.add_argument("--calls", type=int, default=100, help="sequential originates per method and round")
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[200, 1000], help="calls/s for the event delay"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each replay")
    parser.add_argument("--burst", type=int, default=600, help="calls at once for the fold's rate")
    args = parser.parse_args()

    # A name of its own: a test run on the same PostgreSQL keeps its test database.
    sqlite = connection.vendor == "sqlite"
    connection.settings_dict["TEST"]["NAME"] = (
        str(Path(tempfile.mkdtemp()) / "bench.sqlite3") if sqlite else "bench_callcenter"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"database: {connection.vendor}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            agi_port = free_port()
            with running_pbxsim(
                dialplans=contract_dialplans(Path(tmp), agi_port), manager_users=MANAGER_USERS, time_scale=50
            ) as sim:
                server = PbxServer.objects.create(
                    name="bench",
                    ami_port=sim.port,
                    ami_username="platform",
                    ami_secret="platform-secret",
                    agi_bind_port=agi_port,
                )
                DialRoute.objects.create(server=server, template="Local/{number}@phones")
                child = PbxChild(server)
                bare = Bare(sim.port)
                facade = PbxFacade()
                try:
                    round_trips(bare, facade, child, server, args.rounds, args.calls)
                    call_event_latency(child, args.rates, args.seconds)
                    fold_end_to_end(bare, child, args.burst)
                    fold_alone(server)
                finally:
                    facade.close()
                    bare.close()
                    child.stop()
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
