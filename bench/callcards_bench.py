"""Call cards: how long a batch of 100,000 cards takes to generate, and 1,000 cards to print.

    make bench
    DEBUG=1 .venv/bin/python bench/callcards_bench.py [--cards 100000] [--print 1000] [--profile]

Generation runs as the command and the Celery job run it (callcards.services.cards.batch_generate:
chunks of CHUNK cards, each PIN drawn, digested, sealed, checked unique among live cards), once on
SQLite and once on PostgreSQL when one is reachable (DATABASE_URL, else the CI's local cluster),
each in a throw-away database of its own, in a child process (Django's database is chosen at
start). Printing (callcards.services.printing.cards_print_pdf: PINs revealed, WeasyPrint, the cards
moved to PRINT) runs on SQLite. Goals: 100,000 cards under 10 s on each database; 1,000 cards to a
PDF under 15 s. Prints figures; asserts nothing.
"""

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
from bench.common import postgres_url  # noqa: E402


def child(args) -> None:
    if args.database == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.db import connection

    from accounts.models import Company
    from bench.click2call_services import bench_database_name
    from callcards.models import Card
    from callcards.services import cards, printing

    bench_database_name(connection, Path(tempfile.mkdtemp()))
    connection.settings_dict["TEST"]["NAME"] = connection.settings_dict["TEST"]["NAME"].replace(
        "click2call", "callcards"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        company = Company.objects.create(name="Cards bench", slug="cards-bench")
        profiler = cProfile.Profile() if args.profile else None
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        batch = cards.batch_create(
            company=company, run="R1", batch="BENCH", count=args.cards, initial_minutes=60, background=False
        )
        if profiler:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert batch.generated == args.cards == Card.objects.filter(batch=batch).count()
        label = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
        print(
            f"generate {args.cards} cards on {label}: {elapsed:6.2f} s "
            f"({args.cards / elapsed:,.0f} cards/s, this process's CPU {cpu:.2f} s, "
            f"chunks of {cards.CHUNK}; goal < 10 s)"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        if args.print_cards:
            selection = Card.objects.filter(batch=batch, sequence__lte=args.print_cards)
            started, cpu = time.perf_counter(), time.process_time()
            pdf = printing.cards_print_pdf(cards=selection, user="bench")
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"print {args.print_cards} cards to PDF on {label}: {elapsed:6.2f} s "
                f"(CPU {cpu:.2f} s, {len(pdf) / 2**20:.1f} MB, {args.print_cards // 10} pages; goal < 15 s)"
            )
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--print", dest="print_cards", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile of the generation")
    parser.add_argument("--database", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.database:
        child(args)
        return
    common = [f"--cards={args.cards}"] + (["--profile"] if args.profile else [])
    runs = [("sqlite", dict(os.environ), [f"--print={args.print_cards}"])]
    url = postgres_url()
    if url:
        runs.append(("postgres", dict(os.environ, DATABASE_URL=url), ["--print=0"]))
    else:
        print("PostgreSQL not reachable: SQLite only")
    # The machine's load inflates the wall-clock figures: say what it was.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for database, env, extra in runs:
        command = [sys.executable, __file__, f"--database={database}", *common, *extra]
        subprocess.run(command, env=env, check=True)


if __name__ == "__main__":
    main()
