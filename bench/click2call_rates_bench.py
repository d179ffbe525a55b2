"""How long, and how much memory, importing a carrier's table of rates into a tariff takes.

    DEBUG=1 .venv/bin/python bench/click2call_rates_bench.py [--rows 100000]
    BENCH_EMBEDDED=1 DEBUG=1 .venv/bin/python bench/click2call_rates_bench.py   # on SQLite

On PostgreSQL when it can have it, else SQLite (bench/click2call_services.py), in a throw-away
database.
Imports the rows into a fresh tariff through RateResource (as the portal and the admin do),
then the same file again (every row unchanged, skipped), then with every price changed (every
prefix an update), and prints the times; with --memory also the peak Python memory, under
tracemalloc, which slows the import (compare times of like runs). It asserts nothing.
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.click2call_services import bench_database_name, services_choose

SERVICES = services_choose()

import django  # noqa: E402

django.setup()

import tablib  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from accounts.models import Company  # noqa: E402
from click2call.models import Tariff  # noqa: E402
from click2call.resources import RateResource  # noqa: E402


def carrier_table(rows: int) -> bytes:
    dataset = tablib.Dataset(headers=["prefix", "destination", "price"])
    for n in range(rows):
        dataset.append([str(33_000_000 + n), f"France - range {n}", f"0.{n % 1000:04d}"])
    return dataset.export("csv").encode()


def timed_import(tariff, body: bytes, *, memory: bool) -> tuple[float, float | None, dict]:
    if memory:  # tracemalloc slows every allocation: times with it are not comparable without it
        tracemalloc.start()
    started = time.perf_counter()
    dataset = tablib.Dataset().load(body.decode(), format="csv")
    result = RateResource(tariff=tariff).import_data(
        dataset, dry_run=False, use_transactions=True, rollback_on_validation_errors=True
    )
    elapsed = time.perf_counter() - started
    peak = None
    if memory:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    assert not result.has_errors() and not result.has_validation_errors(), "the bench's own table is valid"
    return elapsed, peak, result.totals


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--memory", action="store_true", help="also the peak Python memory (tracemalloc)")
    args = parser.parse_args()
    rows = args.rows
    body = carrier_table(rows)
    bench_database_name(connection, Path(tempfile.mkdtemp()))
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"{SERVICES}; {rows} rows, {len(body) / 2**20:.1f} MB of CSV")
    try:
        with transaction.atomic():
            company = Company.objects.create(name="Rates bench", slug="rates-bench")
            tariff = Tariff.objects.create(company=company, name="bench")
            for label in ("new", "same", "changed"):
                if label == "changed":  # a carrier's new table: every price moves
                    body = body.replace(b",0.", b",1.")
                elapsed, peak, totals = timed_import(tariff, body, memory=args.memory)
                print(
                    f"{label:>8}: {elapsed:6.1f} s, {rows / elapsed:8.0f} rows/s, "
                    + (f"peak {peak:6.1f} MB, " if peak is not None else "")
                    + f"new {totals['new']}, update {totals['update']}, skip {totals['skip']}"
                )
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
