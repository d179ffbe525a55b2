"""The fold's rate with a company webhook: the events real Asterisk 22 sent for a click2call call
(tests/pbxsim/traces/click2call-completed.ami), replayed as many calls, folded in batches as the
pbx process folds them (calls.call_events_fold, its commit and the webhook publish after it).

    make bench                                  # SQLite (the embedded default)
    DATABASE_URL=postgres://... DEBUG=1 .venv/bin/python bench/webhook_fold_bench.py

Compared in interleaved rounds, in this process, on a throw-away database (Django's test database):
- "per delivery": the publish before issue 26, one `deliver_webhook.delay()` per delivery;
- "per batch": the present one, one `deliver_webhooks.delay(ids)` per fold batch;
- "no webhook": the same calls of a company without a webhook URL.
The broker is a redis-server of the bench's own (a free port, nothing saved) when one is installed
and REDIS_URL is unset, as in production; else kombu's filesystem transport in a temporary
directory. No worker runs: the published tasks are only counted. It prints figures, asserts nothing.
"""

import argparse
import os
import shutil
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
TMP = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
os.environ["VAR_DIR"] = str(TMP / "var")  # the filesystem broker's queue, when it is the broker

from pbxsim.harness import free_port  # noqa: E402


def _own_redis():
    """A redis-server on a free port, saving nothing, or None when none is installed."""
    if os.environ.get("REDIS_URL") or not shutil.which("redis-server"):
        return None
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    return process


REDIS = _own_redis()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

# Timed as the pbx process runs in production: DEBUG (set above for the development keys) would
# log every query, and on SQLite quote every parameter of every statement again to log it.
settings.DEBUG = False

from celery.signals import before_task_publish  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from accounts.models import Company  # noqa: E402
from bench.pbx_child import RENAMED  # noqa: E402
from pbxsim.tracefile import ami_events  # noqa: E402
from telephony.models import CallRecord, PbxServer, WebhookDelivery  # noqa: E402
from telephony.services import calls, webhooks  # noqa: E402
from telephony.services.calls import ami_source  # noqa: E402

TRACE = "click2call-completed"
CLAIMED = "call-1-1"  # the ChannelId the platform gave the recorded Originate


def per_delivery(deliveries):
    """The publish before issue 26, kept here to be measured against. Takes the batch's delivery ids
    (or, in a tree before the fold's bulk writes, the deliveries: the bench runs against both)."""
    from telephony.tasks import deliver_webhook

    for pk in [getattr(delivery, "pk", delivery) for delivery in deliveries]:
        transaction.on_commit(lambda pk=pk: deliver_webhook.delay(pk), robust=True)


def one_round(server, company, prefix, count, batch, base):
    """Claims for `count` calls (untimed), then their events folded batch after batch (timed)."""
    CallRecord.objects.bulk_create(
        CallRecord(
            source=ami_source(server),
            server=server,
            uniqueid=f"{prefix}{n}-{CLAIMED}",
            linkedid=f"{prefix}{n}-{CLAIMED}",
            company=company,
            app="click2call",
            app_ref=f"request:{n}",
            caller="5550000",
            callee="5551010",
            direction=CallRecord.Direction.OUTBOUND,
            state=CallRecord.State.SENT,
        )
        for n in range(count)
    )
    events = [
        {k: f"{prefix}{n}-{v}" if k in RENAMED else v for k, v in event.items()}
        for n in range(count)
        for event in base
    ]
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(events), batch):
        calls.call_events_fold(server_id=server.pk, events=events[i : i + batch])
    # CPU per event too: on a shared machine it moves less than the wall clock's rate.
    return len(events) / (time.perf_counter() - start), (time.process_time() - cpu) / len(events)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000, help="calls replayed per mode and round")
    parser.add_argument("--batch", type=int, default=100, help="events per fold batch")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()

    sqlite = connection.vendor == "sqlite"
    # A name of its own: another bench on the same PostgreSQL keeps its database.
    name = str(TMP / "bench.sqlite3") if sqlite else f"bench_webhooks_{os.getpid()}"
    connection.settings_dict["TEST"]["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    published = []
    before_task_publish.connect(lambda sender=None, **kwargs: published.append(sender), weak=False)
    broker = "redis" if os.environ.get("REDIS_URL") else "filesystem"
    try:
        server = PbxServer.objects.create(
            name="bench", ami_port=5038, ami_username="platform", ami_secret="platform-secret"
        )
        hooked = Company.objects.create(name="Hooked", slug="hooked")
        # A public address that is never reached: no worker runs.
        Company.objects.filter(pk=hooked.pk).update(webhook_url="https://hooks.example.com/cc")
        hooked.refresh_from_db()
        quiet = Company.objects.create(name="Quiet", slug="quiet")
        base = [e for e in ami_events(TRACE, epoch=time.time()) if e["Event"] in calls.FOLDED_EVENTS]
        present = webhooks._deliver_on_commit
        modes = {
            "per delivery": (hooked, per_delivery),
            "per batch": (hooked, present),
            "no webhook": (quiet, present),
        }
        rates = {mode: [] for mode in modes}
        cpus = {mode: [] for mode in modes}
        tasks = {mode: 0 for mode in modes}
        deliveries = {mode: 0 for mode in modes}
        for round_ in range(args.rounds):
            for number, (mode, (company, publish)) in enumerate(modes.items()):
                webhooks._deliver_on_commit = publish
                published.clear()
                before = WebhookDelivery.objects.count()
                prefix = f"r{round_}m{number}-"
                rate, cpu = one_round(server, company, prefix, args.calls, args.batch, base)
                rates[mode].append(rate)
                cpus[mode].append(cpu)
                tasks[mode] = len(published)
                deliveries[mode] = WebhookDelivery.objects.count() - before
        webhooks._deliver_on_commit = present
        print(
            f"Fold with a company webhook ({connection.vendor}, broker {broker}): {args.calls} calls of "
            f"{TRACE} ({len(base) * args.calls} folded events), batches of {args.batch} events, "
            f"median of {args.rounds} interleaved rounds"
        )
        for mode in modes:
            print(
                f"  {mode:>12}: {statistics.median(rates[mode]):8,.0f} events/s "
                f"(rounds {', '.join(f'{r:,.0f}' for r in rates[mode])}), "
                f"CPU {statistics.median(cpus[mode]) * 1e6:.0f} µs an event; "
                f"{deliveries[mode]} deliveries, {tasks[mode]} tasks published a round"
            )
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
        if REDIS is not None:
            REDIS.terminate()
            REDIS.wait(10)
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
