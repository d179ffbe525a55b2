"""How long, and how much memory, importing a carrier's table of rates into a tariff takes.

    DEBUG=1 .venv/bin/python bench/click2call_rates_bench.py [--rows 100000]
    BENCH_EMBEDDED=1 DEBUG=1 .venv/bin/python bench/click2call_rates_bench.py   # on SQLite

On PostgreSQL when it can have it, else SQLite (bench/click2call_services.py), in a throw-away
database.
Imports the rows into a fresh tariff as the portal's job does (click2call.services.rate_imports:
every row checked, then batches of BATCH_ROWS, each its own transaction), then the same file
again (every row unchanged, skipped), then with every price changed (every prefix an update), and
prints the times and the longest batch (how long the database's write lock is held at most);
with --memory also the peak Python memory, under tracemalloc, which slows the import (compare
times of like runs). It asserts nothing.
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
from click2call.models import RateImport, Tariff  # noqa: E402
from click2call.services import rate_imports  # noqa: E402


def carrier_table(rows: int) -> bytes:
    dataset = tablib.Dataset(headers=["prefix", "destination", "price"])
    for n in range(rows):
        dataset.append([str(33_000_000 + n), f"France - range {n}", f"0.{n % 1000:04d}"])
    return dataset.export("csv").encode()


class BatchTimer:
    """The longest of the job's batches, each timed from its first query to its commit."""

    def __init__(self):
        self.longest = 0.0
        self._write_batch = rate_imports._write_batch

    def __call__(self, job, rates):
        started = time.perf_counter()
        self._write_batch(job, rates)
        self.longest = max(self.longest, time.perf_counter() - started)


def timed_import(tariff, body: bytes, *, memory: bool) -> tuple[float, float | None, dict, str]:
    if memory:  # tracemalloc slows every allocation: times with it are not comparable without it
        tracemalloc.start()
    started = time.perf_counter()
    # The job's row as rate_imports.rate_import_start makes it, without queueing a task.
    job = RateImport.objects.create(tariff=tariff, file_name="bench.csv", content=body)
    timer = rate_imports._write_batch = BatchTimer()
    try:
        rate_imports.rate_import_run(rate_import_id=job.pk)
    finally:
        rate_imports._write_batch = timer._write_batch
    job.refresh_from_db()
    assert job.status == RateImport.Status.DONE, job.problems
    unchanged = job.rows - job.created_count - job.changed_count
    totals = {"new": job.created_count, "update": job.changed_count, "skip": unchanged}
    note = f"longest batch {timer.longest * 1000:.0f} ms"
    elapsed = time.perf_counter() - started
    peak = None
    if memory:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return elapsed, peak, totals, note


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
                elapsed, peak, totals, note = timed_import(tariff, body, memory=args.memory)
                print(
                    f"{label:>8}: {elapsed:6.1f} s, {rows / elapsed:8.0f} rows/s, "
                    + (f"peak {peak:6.1f} MB, " if peak is not None else "")
                    + f"new {totals['new']}, update {totals['update']}, skip {totals['skip']}, {note}"
                )
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
