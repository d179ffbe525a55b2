"""Click2call: the banner's POST under load beside a bare Django view, and the longest-prefix
rate lookup over 100,000 prefixes.

    make bench                                  # production's services when available
    BENCH_EMBEDDED=1 DEBUG=1 .venv/bin/python bench/click2call_bench.py   # SQLite and files

Runs on PostgreSQL and Redis when it can have them, else on the embedded defaults (see
bench/click2call_services.py; the first line printed says which). Creates a throw-away
database. (a) starts gunicorn as production runs it (DEBUG off, a SECRET_KEY, ALLOWED_HOSTS;
the throttles raised so they never answer 429) on bench/c2c_settings.py, whose URLs add a
bare JSON view, and drives both with the same 32 connections, in interleaved rounds.
(b) times `rate_find` on a tariff of 100,000 random prefixes, beside the ORM query it
replaced. Goals: the POST at >= 30% of the bare view's rate, p99 < 50 ms, no error; the
lookup's p99 < 1 ms. (c) times a throttle's write on the embedded file cache holding many
keys, Django's backend beside config.cache.FileCache. Prints figures, asserts nothing.
`--parts a` runs only (a), `--parts bc` the other two.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
from bench.common import ms, percentile  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.click2call_services import bench_database_name, services_choose  # noqa: E402

SERVICES = services_choose()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import Company  # noqa: E402
from click2call.models import Campaign, Rate, Tariff  # noqa: E402
from click2call.services.rating import rate_find  # noqa: E402
from pbxsim.harness import free_port  # noqa: E402
from telephony.models import PbxServer  # noqa: E402
from telephony.testing import database_url  # noqa: E402

ORIGIN = "https://shop.example.com"
CONNECTIONS = 32


def campaign_create():
    company = Company.objects.create(name="Bench", slug="bench", billing_email="b@bench.example")
    server = PbxServer.objects.create(name="bench", ami_username="platform", ami_secret="secret")
    tariff = Tariff.objects.create(company=company, name="bench")
    Rate.objects.create(tariff=tariff, prefix="336", destination="France - Mobile", price=Decimal("0.1"))
    return Campaign.objects.create(
        company=company, name="bench", server=server, tariff=tariff, allowed_origins=ORIGIN
    )


# -- (a) the banner's POST over HTTP -----------------------------------------------------------


class Load:
    """CONNECTIONS clients, each sending requests one after the other for `seconds`."""

    def __init__(self, port, path, headers, body_of):
        self.port, self.path, self.headers, self.body_of = port, path, headers, body_of
        self.latencies, self.errors, self.statuses = [], 0, {}

    async def one(self, n):
        body = json.dumps(self.body_of(n)).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            + "\r\n"
        ).encode()
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(head + body)
            await writer.drain()
            answer = await reader.read()
            writer.close()
            status = int(answer.split(b" ", 2)[1])
        except (OSError, ValueError, IndexError):
            status = 0
        self.latencies.append(time.perf_counter() - started)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status not in (200, 201):
            self.errors += 1

    async def run(self, seconds, counter):
        deadline = time.perf_counter() + seconds

        async def client():
            while time.perf_counter() < deadline:
                await self.one(next(counter))

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
        return time.perf_counter() - started


def serve(port):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="bench.c2c_settings",
        DATABASE_URL=database_url(),
        DEBUG="0",
        SECRET_KEY="bench-" + "x" * 40,
        CALLCARDS_PIN_KEY="bench-pins-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        C2C_THROTTLE_PER_ADDRESS="1000000000/hour",
        C2C_THROTTLE_PER_NUMBER="1000000000/hour",
    )
    workers = os.environ.get("WEB_WORKERS", "2")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", workers, "--log-level", "warning",
        ],
        cwd=PROJECT_DIR,
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/bare/", data=b"{}", timeout=1)
            return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("gunicorn did not start") from None
            time.sleep(0.2)


def bench_banner(campaign, *, rounds, seconds):
    port = free_port()
    process = serve(port)
    counter = iter(range(10**8))
    # Each POST a new visitor: a French mobile number of its own, so each one creates a request.
    visitor = lambda n: {"number": f"+336{10000000 + n:08d}", "consent": True, "name": "Bench"}  # noqa: E731
    banner = Load(
        port, "/api/click2call/requests/", {"X-Campaign-Key": campaign.public_key, "Origin": ORIGIN}, visitor
    )
    bare = Load(port, "/bench/bare/", {}, visitor)
    elapsed = {"banner": 0.0, "bare": 0.0}
    try:
        # Warm the workers on both paths, untimed: a worker's first banner POST loads libphonenumber's
        # geocoder and carrier data (about 1.3 s, once a process), which a server in use has done.
        for load in (bare, banner):
            asyncio.run(Load(port, load.path, load.headers, visitor).run(2, counter))
        for _ in range(rounds):
            for name, load in (("bare", bare), ("banner", banner)):
                elapsed[name] += asyncio.run(load.run(seconds, counter))
    finally:
        process.terminate()
        process.wait(10)
    print(f"(a) banner POST vs a bare JSON view, gunicorn {os.environ.get('WEB_WORKERS', '2')} sync workers, "
          f"DEBUG off, {CONNECTIONS} connections, {rounds} x {seconds} s each")  # fmt: skip
    rates = {}
    for name, load in (("bare", bare), ("banner", banner)):
        rates[name] = len(load.latencies) / elapsed[name]
        print(
            f"    {name:7} {rates[name]:8.1f} req/s  p50 {ms(statistics.median(load.latencies))}  "
            f"p99 {ms(percentile(load.latencies, 0.99))}  errors {load.errors}  statuses {load.statuses}"
        )
    print(f"    ratio banner/bare {rates['banner'] / rates['bare']:.0%} (goal >= 30%, p99 < 50 ms, 0 errors)")


# -- (b) the rate lookup -------------------------------------------------------------------------


def bench_rate_lookup(campaign, *, prefixes, lookups):
    rng = random.Random(17)
    tariff = Tariff.objects.create(company=campaign.company, name="100k")
    seen = set()
    while len(seen) < prefixes:
        seen.add(str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=rng.randint(0, 7))))
    Rate.objects.bulk_create(
        (Rate(tariff=tariff, prefix=p, destination="bench", price=Decimal("0.01")) for p in seen),
        batch_size=5000,
    )
    numbers = [
        "+" + str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=10)) for _ in range(lookups)
    ]
    for number in numbers[:100]:
        rate_find(tariff=tariff, number=number)
    print(f"(b) longest-prefix rate lookup, {prefixes} prefixes, {lookups} numbers")
    for label, find in (("ORM model instances (before)", orm_rate_find), ("rate_find", rate_find)):
        times, found = [], 0
        for number in numbers:
            started = time.perf_counter()
            found += find(tariff=tariff, number=number) is not None
            times.append(time.perf_counter() - started)
        print(
            f"    {label:30} p50 {ms(statistics.median(times))}  p99 {ms(percentile(times, 0.99))}  "
            f"({found} rated; goal p99 < 1 ms)"
        )


def orm_rate_find(*, tariff, number):
    """The lookup as it was, through the ORM: the reference rate_find is measured against."""
    digits = number.lstrip("+")
    prefixes = [digits[:n] for n in range(1, min(len(digits), 15) + 1)]
    rates = Rate.objects.filter(tariff=tariff, prefix__in=prefixes).only("prefix", "destination", "price")
    return max(rates, key=lambda rate: len(rate.prefix), default=None)


# -- (c) the embedded cache ------------------------------------------------------------------------


def bench_file_cache(*, keys, adds):
    """A throttle's `add` on the file cache holding `keys` entries: Django's backend against ours."""
    from django.core.cache.backends.filebased import FileBasedCache

    from config.cache import FileCache

    print(f"(c) the embedded file cache: {adds} throttle adds with {keys} entries present")
    for label, backend in (
        ("FileBasedCache (before)", FileBasedCache),
        ("config.cache.FileCache", FileCache),
    ):
        with tempfile.TemporaryDirectory() as location:
            cache = backend(location, {"OPTIONS": {"MAX_ENTRIES": 100_000}})
            for n in range(keys):
                cache.set(f"present-{n}", 1, 3600)
            times = []
            for n in range(adds):
                started = time.perf_counter()
                cache.add(f"visitor-{n}", 1, 3600)
                times.append(time.perf_counter() - started)
        print(f"    {label:30} p50 {ms(statistics.median(times))}  p99 {ms(percentile(times, 0.99))}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of load per view")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one round")
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--cache-keys", type=int, default=10_000, help="entries in the file cache for (c)")
    parser.add_argument("--parts", default="abc", help="which parts to run, e.g. `a` for the POST only")
    args = parser.parse_args()
    bench_database_name(connection, Path(tempfile.mkdtemp()))
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"{SERVICES}, cache backend: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    try:
        campaign = campaign_create()
        if "b" in args.parts:
            bench_rate_lookup(campaign, prefixes=args.prefixes, lookups=args.lookups)
        if "c" in args.parts:
            bench_file_cache(keys=args.cache_keys, adds=500)
        if "a" in args.parts:
            connection.close()  # gunicorn's workers write to the same database
            bench_banner(campaign, rounds=args.rounds, seconds=args.seconds)
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
