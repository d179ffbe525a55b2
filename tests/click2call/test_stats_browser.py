"""The statistics page in a browser at 1280 and 375 px: figures, charts, comparison and directions
on the screen, nothing clipped, and the live counts updating by themselves."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from click2call.models import CallRequest
from tests.click2call.factories import CampaignFactory
from tests.click2call.stats_data import COMPANY, attempt_with_legs, request_at
from tests.factories import CompanyFactory, UserFactory
from tests.portal_checks import assert_no_word_broken, assert_nothing_clipped

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
Status = CallRequest.Status


def log_in(page, live_server):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")


def history(campaign, other):
    for day in range(1, 29, 2):
        for n in range(day % 5 + 1):
            at = dt.datetime(2026, 3, day, 9 + n, tzinfo=PARIS)
            status = [Status.COMPLETED, Status.FAILED_USER, Status.COMPLETED, Status.FAILED_COMPANY][n % 4]
            request = request_at(
                campaign if n % 3 else other, at, status=status, carrier=["Orange", "SFR"][n % 2]
            )
            if status == Status.FAILED_USER:
                attempt_with_legs(request, first_ring=None)
            elif status == Status.FAILED_COMPANY:
                attempt_with_legs(request, first_ring=3, second_rings=(None, None))
            else:
                attempt_with_legs(request, first_ring=4, second_rings=(5,), talk=40 + n)
    for day in (3, 9):
        at = dt.datetime(2026, 2, day, 10, tzinfo=PARIS)
        attempt_with_legs(
            request_at(campaign, at), first_party=COMPANY, first_ring=8, second_rings=(3,), talk=20
        )


def test_the_statistics_page_and_its_live_counts(live_server, browser, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="alice")
    campaign = CampaignFactory(company=company, name="Spring sale")
    other = CampaignFactory(company=company, name="Boiler check")
    history(campaign, other)

    for width in (1280, 375):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        log_in(page, live_server)
        page.goto(f"{live_server.url}/portal/acme/click2call/stats/?kind=month&day=2026-03-10")
        assert page.locator('[data-figure="requests"]').inner_text() == str(
            CallRequest.objects.filter(created_at__month=3).count()
        )
        assert page.locator("svg.columns g[data-column]").count() == 31
        assert page.locator("svg.columns").bounding_box()["width"] > width * 0.6
        assert page.locator('tr[data-delta="requests"]').is_visible()
        assert page.get_by_role("link", name="Boiler check").is_visible()
        page.screenshot(path=screenshot_dir / f"c2c-stats-{width}.png", full_page=True)
        assert_nothing_clipped(page)
        assert_no_word_broken(page, "td, dt, dd, h2")

        # A call starts and a failed one arrives: the counts change with no reload.
        in_progress = page.locator('[data-live="in_progress"]')
        before = int(in_progress.inner_text())
        request_at(campaign, timezone.now(), status=Status.DIALING)
        page.wait_for_function(
            f"document.querySelector('[data-live=\"in_progress\"]').textContent.trim() === '{before + 1}'"
        )
        failed = int(page.locator('[data-live="failed_waiting"]').inner_text())
        request_at(campaign, timezone.now(), status=Status.FAILED_COMPANY)
        page.wait_for_function(
            f"document.querySelector('[data-live=\"failed_waiting\"]').textContent.trim() === '{failed + 1}'"
        )
        CallRequest.objects.filter(status=Status.DIALING).update(status=Status.COMPLETED)
        context.close()
