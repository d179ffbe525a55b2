"""Click2call: from a banner's request to its first Originate sent, through a Celery worker.

    make bench
    BENCH_EMBEDDED=1 DEBUG=1 .venv/bin/python bench/click2call_dial_bench.py --requests 50

Runs on PostgreSQL and Redis when it can have them, else SQLite and the embedded broker (kombu's
filesystem transport under VAR_DIR; see bench/click2call_services.py). Creates a throw-away
database, starts pbxsim and a Celery worker (solo pool), then for each request times
call_request_create (what the banner's POST does, queuing the try after commit) until the
attempt's call record is marked sent, i.e. its Originate is written. Prints p50 and p99; it
asserts nothing, then the worker's CPU while idle. On the filesystem broker the worker's poll
(config/env.py: polling_interval) dominates.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
from bench.common import percentile  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.click2call_services import bench_database_name, services_choose  # noqa: E402

SERVICES = services_choose()

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from accounts.models import Company  # noqa: E402
from click2call.models import Campaign, CampaignOperator, Operator, Rate, Tariff  # noqa: E402
from click2call.services.requests import call_request_create  # noqa: E402
from pbxsim.harness import free_port, running_pbxsim  # noqa: E402
from telephony.models import CallRecord, DialRoute, PbxServer  # noqa: E402
from telephony.testing import contract_dialplans, database_url, wait_for  # noqa: E402

MANAGER_USERS = PROJECT_DIR / "tests" / "telephony" / "manager.conf"
C2C_PHONES = PROJECT_DIR / "tests" / "click2call" / "extensions_c2c.conf"
VISITOR_BUSY = "+33612345002"  # a busy phone: each try ends at once


def campaign_on(server):
    company = Company.objects.create(name="Bench", slug="bench")
    tariff = Tariff.objects.create(company=company, name="bench")
    Rate.objects.create(tariff=tariff, prefix="336", destination="France - Mobile", price=Decimal("0.1"))
    campaign = Campaign.objects.create(
        company=company, name="bench", server=server, route="c2c", tariff=tariff, redial_count=0
    )
    operator = Operator.objects.create(company=company, name="op", number="+33612345201")  # phone 5552001
    CampaignOperator.objects.create(campaign=campaign, operator=operator)
    return campaign


def idle_cpu(pid: int, *, seconds: float) -> float:
    """The share of a core the process used over `seconds` (Linux /proc)."""

    def ticks():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    before = ticks()
    time.sleep(seconds)
    return (ticks() - before) / os.sysconf("SC_CLK_TCK") / seconds


def start_worker():
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "--quiet", "worker", "-P", "solo", "-l", "WARNING"]
        + ["--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": database_url()},
    )
    return worker


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50, help="banner requests, one after the other")
    args = parser.parse_args()

    bench_database_name(connection, Path(tempfile.mkdtemp()))
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(SERVICES)
    worker = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            agi_port = free_port()
            dialplans = [*contract_dialplans(Path(tmp), agi_port), C2C_PHONES]
            with running_pbxsim(dialplans=dialplans, manager_users=MANAGER_USERS, time_scale=50) as sim:
                server = PbxServer.objects.create(
                    name="bench",
                    ami_port=sim.port,
                    ami_username="platform",
                    ami_secret="platform-secret",
                    agi_bind_port=agi_port,
                )
                DialRoute.objects.create(server=server, name="c2c", template="Local/{number}@c2c-test-phones")
                campaign = campaign_on(server)
                worker = start_worker()
                sent = CallRecord.objects.exclude(state="claimed")
                times = []
                # The first request also pays for the worker's start and its AMI login: not counted.
                for n in range(args.requests + 1):
                    start = time.perf_counter()
                    request, _ = call_request_create(campaign=campaign, number=VISITOR_BUSY, consent=True)
                    channel_id = f"c2c-{request.pk}-1"
                    wait_for(
                        lambda channel_id=channel_id: (
                            sent.filter(uniqueid=channel_id).exists() or worker.poll() is not None
                        ),
                        timeout=60,
                        interval=0.001,
                        what="the Originate",
                    )
                    if worker.poll() is not None:
                        raise SystemExit("the Celery worker stopped")
                    if n:
                        times.append(time.perf_counter() - start)
                    # The open request would take the next one's place: end it as the pbx process would.
                    request.status = "FAILED_USER"
                    request.save(update_fields=["status"])
                print(
                    f"banner request -> first Originate sent, {len(times)} requests through a Celery worker: "
                    f"p50 {percentile(times, 0.5) * 1000:.1f} ms, p99 {percentile(times, 0.99) * 1000:.1f} ms"
                )
                time.sleep(1)  # the last task's tail
                print(f"idle worker: {idle_cpu(worker.pid, seconds=10):.2%} of a core over 10 s")
    finally:
        if worker:
            worker.terminate()
            worker.wait(15)
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
