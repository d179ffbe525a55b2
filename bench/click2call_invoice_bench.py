"""Click2call invoices: how long a month of 10,000 COMPLETED calls takes to invoice.

    make bench
    DEBUG=1 .venv/bin/python bench/click2call_invoice_bench.py [--calls 10000] [--campaigns 20] [--profile]

Runs click2call.services.invoices.invoice_issue as the monthly schedule and staff's runs do: the
calls counted per campaign (one aggregate query), the number taken, the PDF rendered with WeasyPrint
and stored, all in one transaction; the e-mail goes later, from a worker, and is not counted. The
PDF lists one line per campaign (no per-call detail), so its size does not grow with the calls.
SQLite, in a throw-away database of the bench's own. Goal: under 10 s. Prints figures; asserts nothing.
"""

import argparse
import cProfile
import datetime as dt
import os
import pstats
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Company
    from bench.click2call_services import bench_database_name
    from click2call.models import CallRequest, Campaign, Issuer, Tariff
    from click2call.services import invoices
    from telephony.models import PbxServer

    bench_database_name(connection, Path(tempfile.mkdtemp()))
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        issuer = Issuer.objects.create(
            name="Bench Operator",
            address="1 bench street",
            vat_id="FR00000000000",
            number_prefix="B",
            default=True,
        )
        company = Company.objects.create(
            name="Invoice bench",
            slug="invoice-bench",
            time_zone="Europe/Paris",
            tax_rate=Decimal("20"),
            postal_address="2 bench avenue",
            billing_email="billing@bench.example",
        )
        server = PbxServer.objects.create(name="bench", ami_username="platform", ami_secret="secret")
        tariff = Tariff.objects.create(company=company, name="bench")
        campaigns = [
            Campaign.objects.create(
                company=company,
                name=f"Campaign {n:02d}",
                server=server,
                tariff=tariff,
                price_per_completed=Decimal("0.35") + n,
            )
            for n in range(args.campaigns)
        ]
        finished = dt.datetime(2026, 11, 15, 12, tzinfo=dt.UTC)
        CallRequest.objects.bulk_create(
            [
                CallRequest(
                    campaign=campaigns[n % len(campaigns)],
                    company=company,
                    number=f"+3361{n:08d}",
                    consent=True,
                    status=CallRequest.Status.COMPLETED,
                    finished_at=finished,
                    price=campaigns[n % len(campaigns)].price_per_completed,
                )
                for n in range(args.calls)
            ],
            batch_size=2000,
        )
        warm = time.perf_counter()
        invoices.invoice_pdf_render(invoice=_warm_up(issuer, company), lines=[])
        warm = time.perf_counter() - warm
        profiler = cProfile.Profile() if args.profile else None
        started, cpu = time.perf_counter(), time.process_time()
        with CaptureQueriesContext(connection) as queries:
            if profiler:
                profiler.enable()
            invoice = invoices.invoice_issue(
                company=company,
                period_start=dt.date(2026, 11, 1),
                now=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
            )
            if profiler:
                profiler.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert invoice.calls == args.calls
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"first PDF of the process (WeasyPrint's import and fonts), not counted below: {warm:.2f} s")
        print(
            f"invoice {args.calls} calls of {args.campaigns} campaigns on SQLite: {elapsed:6.2f} s "
            f"(CPU {cpu:.2f} s, {len(queries)} queries, PDF {len(bytes(invoice.pdf)) / 1024:.0f} KB, "
            f"{invoice.lines.count()} lines, total {invoice.gross} {invoice.currency}; goal < 10 s)"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(20)
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def _warm_up(issuer, company):
    """An unsaved invoice to print once before timing: the first PDF pays WeasyPrint's import and fonts."""
    from click2call.models import Invoice

    invoice = Invoice(
        issuer=issuer,
        company=company,
        number="WARM-UP",
        period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 11, 30),
        currency="EUR",
        tax_rate=Decimal("0"),
        net=Decimal("0"),
        tax=Decimal("0"),
        gross=Decimal("0"),
        issued_at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
    )
    return invoice


if __name__ == "__main__":
    main()
