"""The telephony layer against the simulator: how fast AMI events become call
records, and what the facade adds to an Originate round trip.

    make bench                                  # SQLite (the embedded default)
    DATABASE_URL=postgres://... DEBUG=1 .venv/bin/python bench/telephony_bench.py

Creates a throw-away database (Django's test database), starts `manage.py pbxsim`
and `manage.py pbx` as their own processes, as in production, and prints
figures; it asserts nothing.
"""

import argparse
import asyncio
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

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from panoramisk import Manager  # noqa: E402

from pbxsim.harness import free_port, running_pbxsim  # noqa: E402
from pbxsim.tracefile import ami_events  # noqa: E402
from telephony.facade import PbxFacade  # noqa: E402
from telephony.models import CallRecord, DialRoute, PbxServer  # noqa: E402
from telephony.services import calls  # noqa: E402
from telephony.testing import contract_dialplans, database_url, wait_for  # noqa: E402

MANAGER_USERS = PROJECT_DIR / "tests" / "telephony" / "manager.conf"
BARE_PANORAMISK_ON_ASTERISK = "median 1.93 ms"


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


async def bare_manager(port):
    manager = Manager(
        host="127.0.0.1",
        port=port,
        username="platform",
        secret="platform-secret",
        events="on",
        ping_delay=3600,
    )
    await manager.connect()
    await asyncio.sleep(0.2)
    return manager


async def bare_round_trips(port, calls):
    manager = await bare_manager(port)
    times = []
    for n in range(calls):
        start = time.perf_counter()
        response = await manager.send_action(originate_action(f"bare-{n}"))
        times.append(time.perf_counter() - start)
        assert response[-1]["Event"] == "OriginateResponse", response
    manager.close()
    return times


def facade_round_trips(server, calls):
    facade = PbxFacade()
    times = []
    for n in range(calls):
        start = time.perf_counter()
        outcome = facade.originate(
            server=server, channel_id=f"facade-{n}", number="5551012", context="platform-hold", wait=True
        )
        times.append(time.perf_counter() - start)
        assert outcome.outcome == "answered", outcome
    facade.close()
    return times


async def burst_of_calls(port, calls):
    """Fire `calls` originates back to back; count the AMI events they cause."""
    manager = await bare_manager(port)
    counted = []
    manager.register_event("*", lambda m, e: counted.append(1))
    await asyncio.gather(*(manager.send_action(originate_action(f"fold-{n}")) for n in range(calls)))
    await asyncio.sleep(0.5)
    manager.close()
    return len(counted)


def fold_end_to_end(port, calls):
    start = time.perf_counter()
    events = asyncio.run(burst_of_calls(port, calls))
    wait_for(
        lambda: (
            CallRecord.objects.filter(uniqueid__startswith="fold-", ended_at__isnull=False).count() == calls
        ),
        timeout=120,
        interval=0.05,
        what="all call records",
    )
    return events, time.perf_counter() - start


def fold_capacity(server, copies=200, batch=100):
    """The folding service alone, on the events real Asterisk sent for a two-leg call."""
    base = ami_events("click2call-completed", epoch=time.time())
    events = []
    for n in range(copies):
        for event in base:
            copy = dict(event)
            for key in ("Uniqueid", "DestUniqueid", "UniqueID", "Linkedid", "DestLinkedid"):
                if key in copy:
                    copy[key] = f"cap{n}-{copy[key]}"
            events.append(copy)
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        calls.call_events_fold(server_id=server.pk, events=events[i : i + batch])
    return len(events), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300, help="sequential originates per method")
    parser.add_argument("--burst", type=int, default=600, help="calls at once for the folding rate")
    args = parser.parse_args()

    if connection.vendor == "sqlite":
        connection.settings_dict["TEST"]["NAME"] = str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"database: {connection.vendor}")
    pbx = None
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
                pbx = subprocess.Popen(
                    [sys.executable, "manage.py", "pbx"],
                    cwd=PROJECT_DIR,
                    env={**os.environ, "DATABASE_URL": database_url(), "LOG_LEVEL": "WARNING"},
                )
                wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", timeout=30)
                bare = asyncio.run(bare_round_trips(sim.port, args.calls))
                through = facade_round_trips(server, args.calls)
                events, elapsed = fold_end_to_end(sim.port, args.burst)
                capacity_events, capacity_seconds = fold_capacity(server)
    finally:
        if pbx is not None:
            pbx.terminate()
            pbx.wait(10)
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)

    print(f"Originate round trip, {args.calls} sequential (send to OriginateResponse):")
    print(
        f"  bare panoramisk:  p50 {ms(statistics.median(bare))}  p99 {ms(percentile(bare, 0.99))}"
        f"   (on real Asterisk 22: {BARE_PANORAMISK_ON_ASTERISK})"
    )
    print(
        f"  through facade:   p50 {ms(statistics.median(through))}  p99 {ms(percentile(through, 0.99))}"
        f"   (claims the call record first; target p50 within 2x of bare, p99 under 10 ms)"
    )
    print(
        f"Call records from a burst of {args.burst} calls: {events} AMI events, every record complete "
        f"{elapsed:.2f} s after the first Originate: {events / elapsed:,.0f} events/s (target 5,000)"
    )
    print(
        f"  folding alone (recorded two-leg calls, batches of 100): "
        f"{capacity_events / capacity_seconds:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
