"""Memory and start-up: the resident size (RSS) of the processes the platform runs, and of
`manage.py pbx` idle and while it folds 10,000 calls on pbxsim.

    make bench                                  # SQLite (the embedded default)
    DATABASE_URL=postgres://... DEBUG=1 .venv/bin/python bench/memory_bench.py [--calls 10000]

Start-up: a fresh interpreter per round (median of --rounds) measures django.setup(), then
`import config.urls` (a web worker), then the Celery app with every app's tasks imported
(what a prefork worker's child inherits). Then a throw-away database (Django's test
database), pbxsim and the real `manage.py pbx` as its own process with DEBUG off, as in
production; the calls are Originates of a phone that answers and hangs up, sent by a
session of this process in bursts, and RSS is read from /proc after each thousand calls
are folded into finished call records. It asserts nothing: sizes depend on the machine.
"""

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
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

from pbxsim.harness import free_port, running_pbxsim  # noqa: E402
from telephony.models import CallRecord, DialRoute, PbxServer  # noqa: E402
from telephony.selectors import pbx_server_is_up  # noqa: E402
from telephony.testing import contract_dialplans, database_url, wait_for  # noqa: E402

MANAGER_USERS = PROJECT_DIR / "tests" / "telephony" / "manager.conf"
BURST = 250  # Originates in flight at once: pbxsim answers them all, the fold keeps up
# The figures of issue 26, before this bench existed (a turn earlier: 85 MiB idle).
ISSUE_FIGURES = "210 MiB idle, 290-314 MiB after 10,000 calls; `import config.urls` 0.95 s"

STARTUP = """
import json, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
figures = {}
start = time.perf_counter()
import django
django.setup()
figures["setup_s"], figures["setup_mib"] = time.perf_counter() - start, rss()
if sys.argv[1] == "web":
    start = time.perf_counter()
    import config.urls
    figures["urls_s"], figures["urls_mib"] = time.perf_counter() - start, rss()
else:
    from django.core.checks import run_checks
    from config.celery import app
    app.loader.import_default_modules()
    run_checks()  # as `manage.py` commands do, and celery's Django fixup before the worker forks
    figures["celery_mib"] = rss()
print(json.dumps(figures))
"""


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def startup(rounds):
    runs = []
    for _ in range(rounds):
        for kind in ("web", "worker"):
            command = [sys.executable, "-c", STARTUP, kind]
            out = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.splitlines()[-1]))

    def median(key):
        return statistics.median(run[key] for run in runs if key in run)

    print(f"Start-up, a fresh interpreter (median of {rounds}):")
    print(
        f"  django.setup() (the pbx process, a Celery worker): {median('setup_mib'):.0f} MiB, "
        f"{median('setup_s'):.2f} s"
    )
    print(
        f"  then import config.urls (a web worker): {median('urls_mib'):.0f} MiB, "
        f"the import {median('urls_s'):.2f} s"
    )
    print(
        "  instead, a Celery worker's child (setup, every app's tasks, the system checks): "
        f"{median('celery_mib'):.0f} MiB"
    )


def originate_action(channel_id):
    # The demo phone 5551012 answers and hangs up: each call ends by itself and is folded whole.
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


class Caller:
    """A session of its own that sends the Originates (events on: panoramisk's answer to an async
    Originate is its OriginateResponse event)."""

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
        self.loop.run_until_complete(self.manager.connect())

    def calls(self, prefix, first, count):
        async def run():
            for start in range(first, first + count, BURST):
                ids = range(start, min(start + BURST, first + count))
                await asyncio.gather(
                    *(self.manager.send_action(originate_action(f"{prefix}{i}")) for i in ids)
                )

        self.loop.run_until_complete(run())

    def close(self):
        self.manager.close()
        self.loop.close()


# `manage.py pbx` under tracemalloc: SIGUSR1 writes a snapshot to the file named by the argument.
TRACED_PBX = """
import signal, sys, tracemalloc
tracemalloc.start(3)
path = sys.argv.pop(1)
signal.signal(signal.SIGUSR1, lambda *_: tracemalloc.take_snapshot().dump(path))
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", *sys.argv[1:]])
"""


def pbx_process(server, snapshot=None):
    """`manage.py pbx --server NAME` with DEBUG off: Django keeps no query log, as in production."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "LOG_LEVEL": "WARNING",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CALLCARDS_PIN_KEY": secrets.token_urlsafe(50),
    }
    command = ["-c", TRACED_PBX, str(snapshot)] if snapshot else ["manage.py"]
    return subprocess.Popen(
        [sys.executable, *command, "pbx", "--server", server.name], cwd=PROJECT_DIR, env=env
    )


def take_snapshot(child, path):
    if path.exists():
        path.unlink()
    child.send_signal(signal.SIGUSR1)
    wait_for(lambda: path.exists() and path.stat().st_size, timeout=120, what="a tracemalloc snapshot")
    time.sleep(1.0)  # written by then (the file appears as the dump begins)
    return tracemalloc.Snapshot.load(str(path))


def folded(prefix):
    return CallRecord.objects.filter(uniqueid__startswith=prefix, ended_at__isnull=False).count()


def calls_rss(server, sim_port, total, traced):
    snapshot = Path(tempfile.mkdtemp()) / "pbx.tracemalloc" if traced else None
    first = None
    child = pbx_process(server, snapshot)
    caller = Caller(sim_port)
    try:
        wait_for(
            lambda: pbx_server_is_up(PbxServer.objects.get(pk=server.pk)), timeout=300, what="the pbx process"
        )
        # Up means connected; the first batch of its own (lease, apps' start) is done a moment later.
        time.sleep(2.0)
        idle = rss_mib(child.pid)
        print(f"`manage.py pbx` (DEBUG off), {connection.vendor}, RSS after N calls folded:")
        print(f"  idle: {idle:.0f} MiB")
        done, start, figures = 0, time.perf_counter(), {}
        while done < total:
            step = min(1000, total - done)
            caller.calls("mem-", done, step)
            done += step
            wait_for(
                lambda n=done: folded("mem-") >= n, timeout=600, interval=0.2, what=f"{done} folded calls"
            )
            figures[done] = rss_mib(child.pid)
            if traced and first is None:
                first = take_snapshot(child, snapshot)
        elapsed = time.perf_counter() - start
        series = ", ".join(f"{n:,}: {mib:.0f}" for n, mib in figures.items())
        print(f"  {series} MiB ({total:,} calls in {elapsed:.0f} s)")
        after_first = figures[min(figures)]
        print(
            f"  growth after the first thousand: {figures[total] - after_first:+.1f} MiB "
            f"over {total - min(figures):,} calls; issue 26 measured {ISSUE_FIGURES}"
        )
        if traced:
            print("  tracemalloc, what grew since the first thousand calls (by where it was allocated):")
            for stat in take_snapshot(child, snapshot).compare_to(first, "traceback")[:8]:
                print(f"    {stat.size_diff / 1024:+,.0f} KiB in {stat.count_diff:+,} blocks")
                for line in stat.traceback.format(most_recent_first=True):
                    print(f"      {line}")
    finally:
        caller.close()
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10000, help="calls folded by the pbx process")
    parser.add_argument("--rounds", type=int, default=3, help="fresh interpreters for the start-up figures")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="what the pbx process's growth is made of (slower; RSS counts it)",
    )
    args = parser.parse_args()

    startup(args.rounds)
    # A name of its own: a test run on the same PostgreSQL keeps its test database.
    sqlite = connection.vendor == "sqlite"
    connection.settings_dict["TEST"]["NAME"] = (
        str(Path(tempfile.mkdtemp()) / "bench.sqlite3") if sqlite else "bench_memory_callcenter"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
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
                calls_rss(server, sim.port, args.calls, args.tracemalloc)
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
