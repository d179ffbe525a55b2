"""Click2call statistics: the portal's statistics page and the API of a company with 1,000,000 call
requests (the goal: the page under 500 ms on PostgreSQL), with its query count.

    make bench
    DEBUG=1 .venv/bin/python bench/click2call_stats_bench.py [--requests 1000000] [--rounds 20]

The requests are spread over the 365 days before now, over three campaigns, with their attempts and
legs as the telephony layer records them: every request but the pending ones has an attempt whose
first leg (the visitor) is a call record, answered unless the request FAILED CALLING TO USER; an
answered visitor's attempt has a second leg (an operator), answered when COMPLETED. They are
bulk-inserted (INSERT ... SELECT, the database making the rows) into a throw-away database
of the bench's own, on SQLite and on PostgreSQL when one is reachable (DATABASE_URL, else the CI's
local cluster), each in a child process. Then the page is fetched `rounds` times (signed in, through
Django's whole stack) for: the default (today), this month so far, a full month, a week, a day, and the
whole year; and the API for a month. Prints p50/p99 and the page's queries; asserts nothing.
"""

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
from bench.common import percentile, postgres_url  # noqa: E402

# Of every 20 requests: 13 completed, 3 failed calling the visitor, 3 the company, 1 pending; one
# in five from Belgium, the others from four French operators.


# The rows are made by the database itself (INSERT ... SELECT over a series of numbers): a million
# model instances through bulk_create took minutes. Attempt n is request n's (the bench's
# database holds this company alone); its legs are 2n-1
# (the visitor, first) and 2n (the operator, its child). %% is a literal % in a query with params.
_NUMBERS = {
    "postgresql": "WITH g(n) AS (SELECT generate_series(1, %(count)s))",
    "sqlite": "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < %(count)s)",
}
_TIME = {
    "postgresql": "to_timestamp({})",
    "sqlite": "datetime({}, 'unixepoch')",
}
_REQUESTS = """
{numbers}
INSERT INTO click2call_callrequest (id, campaign_id, company_id, number, name, note, consent, status,
    status_token, destination, country, region, carrier, rate_prefix, rate_price, tries, origin,
    created_at, updated_at, finished_at)
SELECT n, CASE n %% 3 WHEN 0 THEN %(c0)s WHEN 1 THEN %(c1)s ELSE %(c2)s END, %(company)s,
    '+' || CAST(33600000000 + n AS TEXT), '', '', TRUE,
    CASE WHEN n %% 20 < 13 THEN 'COMPLETED' WHEN n %% 20 < 16 THEN 'FAILED_USER'
         WHEN n %% 20 < 19 THEN 'FAILED_COMPANY' ELSE 'PENDING' END,
    'bench-' || CAST(n AS TEXT), 'France - Mobile', CASE n %% 5 WHEN 4 THEN 'BE' ELSE 'FR' END, '',
    CASE n %% 5 WHEN 0 THEN 'Orange' WHEN 1 THEN 'SFR' WHEN 2 THEN 'Free Mobile' WHEN 3 THEN 'Bouygues'
         ELSE 'Proximus' END,
    '', 0.1, 1, '', {created}, {created}, {created}
FROM g
"""
_ATTEMPTS = """
INSERT INTO click2call_callattempt (id, request_id, seq, kind, first_party, status, channel_id, detail,
    created_at, finished_at)
SELECT id, id, 1, 'auto', 'visitor', status, 'bench-' || CAST(id AS TEXT), '', created_at, finished_at
FROM click2call_callrequest WHERE company_id = %(company)s AND status <> 'PENDING'
"""
# ring = 3 + id %% 10 s; talk = 30 + id %% 300 s when COMPLETED.
_LEGS = """
INSERT INTO telephony_callrecord (id, parent_id, source, uniqueid, linkedid, company_id, app, app_ref,
    channel, caller, callee, direction, started_at, answered_at, ended_at, duration, billsec, state,
    disposition, bridge_id, hangup_cause_text, outcome_guessed, updated_at)
SELECT {id}, {parent}, 'push:bench', 'b-' || CAST({id} AS TEXT), '', %(company)s, 'click2call',
    'attempt:' || CAST(a.id AS TEXT), '', '', '', 'outbound', a.created_at,
    CASE WHEN {answered} THEN a.created_at ELSE NULL END, a.finished_at,
    3 + a.id %% 10 + CASE WHEN a.status = 'COMPLETED' THEN 30 + a.id %% 300 ELSE 0 END + 10,
    CASE WHEN {answered} THEN 10 + CASE WHEN a.status = 'COMPLETED' THEN 30 + a.id %% 300 ELSE 0 END
         ELSE 0 END,
    'ended', CASE WHEN {answered} THEN 'ANSWERED' ELSE 'NO ANSWER' END, '', '', FALSE, a.created_at
FROM click2call_callattempt a
WHERE a.status IN {statuses}
"""


def load(count: int):
    from django.db import connection

    from accounts.models import Company, User
    from click2call.models import Campaign, Tariff
    from telephony.models import PbxServer

    company = Company.objects.create(name="Stats bench", slug="stats-bench", time_zone="Europe/Paris")
    user = User.objects.create_user(username="stats-bench", password="x", company=company)
    server = PbxServer.objects.create(name="bench", ami_username="platform", ami_secret="secret")
    tariff = Tariff.objects.create(company=company, name="bench")
    campaigns = [
        Campaign.objects.create(company=company, name=f"Campaign {n}", server=server, tariff=tariff)
        for n in range(3)
    ]
    vendor = connection.vendor
    # Spread evenly over the year before now, each request at its own second.
    epoch = "(%(now)s - (CAST(%(span)s AS BIGINT) * (%(count)s - n)) / %(count)s)"
    params = {
        "count": count,
        "company": company.pk,
        "now": int(time.time()),
        "span": 365 * 86400,
        **{f"c{n}": campaign.pk for n, campaign in enumerate(campaigns)},
    }
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            _REQUESTS.format(numbers=_NUMBERS[vendor], created=_TIME[vendor].format(epoch)), params
        )
        cursor.execute(_ATTEMPTS, params)
        first = _LEGS.format(
            id="2 * a.id - 1",
            parent="NULL",
            answered="a.status <> 'FAILED_USER'",
            statuses="('COMPLETED', 'FAILED_USER', 'FAILED_COMPANY')",
        )
        cursor.execute(first, params)
        second = _LEGS.format(
            id="2 * a.id",
            parent="2 * a.id - 1",
            answered="a.status = 'COMPLETED'",
            statuses="('COMPLETED', 'FAILED_COMPANY')",
        )
        cursor.execute(second, params)
        legs = cursor.execute("SELECT COUNT(*) FROM telephony_callrecord").fetchone()[0]
        attempts = cursor.execute("SELECT COUNT(*) FROM click2call_callattempt").fetchone()[0]
    _sequences_reset()
    _analyze()
    print(
        f"  loaded {count:,} requests, {attempts:,} attempts, {legs:,} legs in "
        f"{time.perf_counter() - started:.0f} s"
    )
    return company, user


def _sequences_reset():
    from django.core.management.color import no_style
    from django.db import connection

    from click2call.models import CallAttempt, CallRequest
    from telephony.models import CallRecord

    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [CallRequest, CallAttempt, CallRecord]):
            cursor.execute(sql)


def _analyze():
    """Fresh statistics for the planner, as autovacuum would have after a year of inserts."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def timed(client, url, query, rounds):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, query)  # warm: templates compiled, pages cached by the database
    times = []
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url, query)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, query, response.status_code)
    return times, len(queries)


def child(args) -> None:
    if args.database == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from bench.click2call_services import bench_database_name
    from config import periods

    settings.ALLOWED_HOSTS = ["*"]
    bench_database_name(connection, Path(tempfile.mkdtemp()))
    connection.settings_dict["TEST"]["NAME"] = connection.settings_dict["TEST"]["NAME"].replace(
        "click2call", "c2cstats"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    label = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    print(f"{label}:")
    try:
        company, user = load(args.requests)
        client = Client()
        client.force_login(user)
        today = periods.today(company)
        last_month = today.replace(day=1) - dt.timedelta(days=1)
        page = f"/portal/{company.slug}/click2call/stats/"
        cases = [
            ("page, today (default, by hour)", page, {}),
            ("page, this month so far", page, {"kind": "month"}),
            ("page, a full month", page, {"kind": "month", "day": last_month.isoformat()}),
            ("page, a week", page, {"kind": "week", "day": last_month.isoformat()}),
            ("page, a day (hours)", page, {"kind": "day", "day": last_month.isoformat()}),
            (
                "page, the whole year (366 days)",
                page,
                {
                    "kind": "custom",
                    "start": (today - dt.timedelta(days=365)).isoformat(),
                    "end": today.isoformat(),
                },
            ),
            (
                "API, a full month",
                "/api/click2call/stats/",
                {"from": last_month.replace(day=1).isoformat(), "to": last_month.isoformat()},
            ),
        ]
        for name, url, query in cases:
            since, until = periods.day_bounds(company, *_period(company, query, today))
            in_period = company.c2c_requests.filter(created_at__gte=since, created_at__lt=until).count()
            # The whole year takes seconds a round: a few rounds say enough.
            rounds = args.rounds if "year" not in name else min(args.rounds, 3)
            times, queries = timed(client, url, query, rounds)
            print(
                f"  {name:36s} {in_period:>9,} requests  p50 {percentile(times, 0.5) * 1000:7.1f} ms  "
                f"p99 {percentile(times, 0.99) * 1000:7.1f} ms  {queries} queries"
            )
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def _period(company, query, today):
    """The dates a case covers, for the count printed beside it (and its compared period's too)."""
    from click2call import stats

    if "from" in query:
        return dt.date.fromisoformat(query["from"]), dt.date.fromisoformat(query["to"])
    if query.get("kind") == "custom":
        return dt.date.fromisoformat(query["start"]), dt.date.fromisoformat(query["end"])
    day = dt.date.fromisoformat(query["day"]) if "day" in query else today
    return stats.period_of(query.get("kind", "day"), day)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--postgres-only", action="store_true")
    args = parser.parse_args()
    if args.database:
        child(args)
        return
    common = [f"--requests={args.requests}", f"--rounds={args.rounds}"]
    runs = [] if args.postgres_only else [("sqlite", dict(os.environ))]
    url = postgres_url()
    if url:
        runs.append(("postgres", dict(os.environ, DATABASE_URL=url)))
    else:
        print("PostgreSQL not reachable: SQLite only")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for database, env in runs:
        subprocess.run([sys.executable, __file__, f"--database={database}", *common], env=env, check=True)


if __name__ == "__main__":
    main()
