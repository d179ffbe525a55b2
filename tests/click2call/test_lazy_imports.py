"""libphonenumber's geocoder and carrier data (about 115 MiB) are loaded by the processes that
describe a number, not by every process at start: the pbx process, a Celery worker and the
dial check run without them, and a banner's request still records where the number leads."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from click2call.models import CallRequest
from click2call.services.rating import NumberRefused, number_rate_check
from click2call.services.requests import call_request_create
from tests.click2call.factories import BlockedPrefixFactory, CampaignFactory

PROJECT_DIR = Path(__file__).resolve().parents[2]
HEAVY = ("phonenumbers.geocoder", "phonenumbers.carrier", "weasyprint", "config.urls", "rest_framework.views")

# What `manage.py pbx` imports and checks before its first call (a Celery worker imports the same
# tasks; its checks, all of them, import the URLs).
START = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
import config.celery, click2call.tasks, click2call.services.dialing, telephony.process
from telephony.management.commands import pbx
command = pbx.Command()
command.check(tags=command.requires_system_checks)  # what `manage.py pbx` checks before it runs
print(json.dumps([name for name in {heavy!r} if name in sys.modules]))
"""


def test_the_pbx_process_starts_without_the_geocoder_the_carrier_data_weasyprint_or_the_urls():
    run = subprocess.run(
        [sys.executable, "-c", START.format(heavy=HEAVY)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == []


@pytest.mark.django_db
def test_a_banner_request_still_records_the_country_region_and_carrier(monkeypatch):
    monkeypatch.setattr("click2call.tasks.dial_attempt.delay", lambda *args: None)
    campaign = CampaignFactory(tariff__rates={"33": ("France", "0.1")})
    mobile, _ = call_request_create(campaign=campaign, number="06 12 34 56 78", consent=True)
    landline, _ = call_request_create(campaign=campaign, number="01 42 68 53 00", consent=True)
    mobile, landline = (CallRequest.objects.get(pk=r.pk) for r in (mobile, landline))
    assert (mobile.destination, mobile.country, mobile.region) == ("France", "FR", "France")
    assert mobile.carrier == "SFR"
    assert (landline.country, landline.region, landline.carrier) == ("FR", "Paris", "")


@pytest.mark.django_db
def test_the_dial_check_gives_the_rate_and_refuses_a_blocked_or_unrated_number():
    campaign = CampaignFactory(tariff__rates={"33": ("France", "0.1"), "336": ("France - Mobile", "0.2")})
    assert number_rate_check(campaign=campaign, number="+33612345678").prefix == "336"
    with pytest.raises(NumberRefused) as unrated:
        number_rate_check(campaign=campaign, number="+4930123456")
    assert (unrated.value.code, unrated.value.status) == ("unsupported_destination", 422)
    BlockedPrefixFactory(company=campaign.company, prefix="3361")
    with pytest.raises(NumberRefused) as blocked:
        number_rate_check(campaign=campaign, number="+33612345678")
    assert blocked.value.code == "blocked_prefix"
