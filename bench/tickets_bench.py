"""Ticket lines: ticket numbers from 100 concurrent calls.

    make bench
    DEBUG=1 .venv/bin/python bench/tickets_bench.py [--calls 100] [--rounds 3]

Each call is a thread on its own database connection that opens a transaction, takes a number with
tickets.services.numbers.ticket_number_allocate and writes its TicketHop, as the hop's AGI does; all
start together (a barrier). Checked after each round: the numbers are contiguous from the line's next
ticket and none is repeated. Prints allocations per second (calls / wall time of the round, each
call's connection opened in it; best and median of the rounds) and how long a hop's transaction
took, waiting for the line's lock included (p50, p99), once on SQLite and once on PostgreSQL when
one is reachable (DATABASE_URL, else the CI's local cluster), each in a throw-away database of its
own, in a child process (Django's database is chosen at start). Asserts nothing about time.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from bench.callcards_bench import postgres_url  # noqa: E402


def child(args) -> None:
    if args.database == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Company
    from bench.click2call_services import bench_database_name
    from telephony.models import PbxServer
    from tickets.models import TicketCall, TicketHop, TicketLine
    from tickets.services.numbers import ticket_number_allocate

    bench_database_name(connection, Path(tempfile.mkdtemp()))
    connection.settings_dict["TEST"]["NAME"] = connection.settings_dict["TEST"]["NAME"].replace(
        "click2call", "tickets"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        company = Company.objects.create(name="Tickets bench", slug="tickets-bench")
        server = PbxServer.objects.create(
            name="bench", ami_host="127.0.0.1", ami_username="b", ami_secret="b"
        )
        line = TicketLine.objects.create(
            company=company, server=server, name="Gas", number="720", next_ticket=1000
        )
        label = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
        rates = []
        for round_number in range(args.rounds):
            first = TicketLine.objects.get(pk=line.pk).next_ticket
            now = timezone.now()
            calls = TicketCall.objects.bulk_create(
                TicketCall(
                    line=line, server=server, uniqueid=f"{round_number}.{i}", called="720", started_at=now
                )
                for i in range(args.calls)
            )
            barrier = threading.Barrier(args.calls + 1)
            tickets, errors, latencies = [], [], []

            def hop(call, barrier=barrier, tickets=tickets, errors=errors, latencies=latencies):
                try:
                    # Each call connects after the start: 100 connections held open at once are more than
                    # PostgreSQL's default max_connections (100, some of them in use) allows.
                    barrier.wait(timeout=60)
                    connection.ensure_connection()
                    began = time.perf_counter()
                    with transaction.atomic():
                        ticket = ticket_number_allocate(line_id=line.pk)
                        TicketHop.objects.create(
                            call=call,
                            line=line,
                            ticket=ticket,
                            sequence=1,
                            technician_name="Tech",
                            called="731",
                            started_at=timezone.now(),
                        )
                    latencies.append(time.perf_counter() - began)
                    tickets.append(ticket)
                except Exception as exc:  # counted and shown: a failed allocation is the finding
                    errors.append(exc)
                finally:
                    connection.close()

            threads = [threading.Thread(target=hop, args=(call,)) for call in calls]
            for thread in threads:
                thread.start()
            # The threads are started and waiting: the clock starts when they are let go.
            barrier.wait(timeout=60)
            started = time.perf_counter()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            expected = list(range(first, first + args.calls))
            stored = sorted(TicketHop.objects.filter(call__in=calls).values_list("ticket", flat=True))
            contiguous = sorted(tickets) == expected == stored
            repeated = len(tickets) - len(set(tickets))
            rates.append(len(tickets) / elapsed)
            waits = sorted(latencies)
            failure = f" ({errors[0]!r})" if errors else ""
            p50, p99 = (waits[int(q * (len(waits) - 1))] * 1000 if waits else 0 for q in (0.5, 0.99))
            print(
                f"{label} round {round_number + 1}: {args.calls} concurrent calls, tickets "
                f"{min(tickets, default=0)}-{max(tickets, default=0)}: contiguous {contiguous}, repeated "
                f"{repeated}, failed {len(errors)}{failure}; {elapsed * 1000:.0f} ms, "
                f"{rates[-1]:,.0f} allocations/s; a hop's transaction (queued on the line's lock "
                f"included) p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )
        print(
            f"{label}: {args.calls} concurrent calls, best {max(rates):,.0f} allocations/s, "
            f"median {statistics.median(rates):,.0f} over {args.rounds} rounds"
        )
    finally:
        connection.close()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.database:
        child(args)
        return
    common = [f"--calls={args.calls}", f"--rounds={args.rounds}"]
    runs = [("sqlite", dict(os.environ))]
    url = postgres_url()
    if url:
        runs.append(("postgres", dict(os.environ, DATABASE_URL=url)))
    else:
        print("PostgreSQL not reachable: SQLite only")
    # The machine's load inflates the wall-clock figures: say what it was.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for database, env in runs:
        subprocess.run([sys.executable, __file__, f"--database={database}", *common], env=env, check=True)


if __name__ == "__main__":
    main()
