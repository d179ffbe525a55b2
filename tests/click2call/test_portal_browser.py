import datetime as dt

import pytest

from click2call.models import CallAttempt, CallRequest, Operator
from click2call.services.requests import call_request_create
from click2call.tasks import dial_attempt
from telephony.models import CallRecord
from telephony.testing import wait_for
from tests.click2call.conftest import OPERATOR_BUSY, OPERATOR_STAYS, VISITOR_WAITS
from tests.click2call.factories import CallRequestFactory, CampaignFactory
from tests.factories import CompanyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")


def test_calls_list_and_campaign_snippet(live_server, browser, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="alice")
    campaign = CampaignFactory(company=company, name="Spring sale")
    for n, status in enumerate(["COMPLETED", "FAILED_USER", "FAILED_COMPANY"]):
        call = CallRequestFactory(
            campaign=campaign, number=f"+3361234000{n}", status=status, name=f"Visitor {n}"
        )
        CallRequest.objects.filter(pk=call.pk).update(
            created_at=dt.datetime(2026, 11, 23, 9, n, tzinfo=dt.UTC), region="Paris"
        )

    for width in (1280, 375):
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        log_in(page, live_server)
        page.goto(f"{live_server.url}/portal/acme/click2call/calls/")
        rows = page.locator("tbody tr")
        assert rows.count() == 3
        assert "2026-11-23 10:02:00 CET" in rows.nth(0).inner_text()
        # Nothing wider than the screen: a phone reads each call as a card.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=screenshot_dir / f"c2c-calls-{width}.png", full_page=True)
        context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    log_in(page, live_server)
    page.goto(f"{live_server.url}/portal/acme/click2call/campaigns/")
    page.click("text=Spring sale")
    snippet = page.locator("#snippet").inner_text()
    assert snippet == f'<script src="{live_server.url}/c2c/{campaign.public_key}/widget.js"></script>'
    page.click("text=New secret key")
    assert page.locator("#secret-key").inner_text().startswith("c2c_sk_")
    page.screenshot(path=screenshot_dir / "c2c-campaign.png", full_page=True)
    context.close()


def test_a_request_the_company_missed_is_called_back_from_the_portal(
    page, live_server, settings, make_campaign, pbx, screenshot_dir
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the call back's dialing task runs in the request
    campaign = make_campaign(operators=[OPERATOR_BUSY], company=CompanyFactory(slug="acme"))
    UserFactory(company=campaign.company, username="alice")
    request, _ = call_request_create(campaign=campaign, number=VISITOR_WAITS, consent=True)
    dial_attempt(request.pk)
    wait_for(lambda: CallRequest.objects.filter(pk=request.pk, status="FAILED_COMPANY").exists(), timeout=15)
    Operator.objects.filter(company=campaign.company).update(number=OPERATOR_STAYS)  # back at the desk

    page.set_default_timeout(10_000)
    log_in(page, live_server)
    page.goto(f"{live_server.url}/portal/acme/click2call/calls/{request.pk}/")
    assert page.locator(".card dd").first.inner_text() == CallRequest.Status.FAILED_COMPANY.label
    page.get_by_role("button", name="Call back").click()
    assert f"Calling back {VISITOR_WAITS}" in page.locator(".messages").inner_text()

    wait_for(lambda: CallRequest.objects.filter(pk=request.pk, status="COMPLETED").exists(), timeout=15)
    callback = request.attempts.get(seq=2)
    assert (callback.kind, callback.first_party, callback.status) == ("callback", "company", "COMPLETED")
    legs = CallRecord.objects.filter(app_ref=callback.app_ref).order_by("started_at", "id")
    wait_for(lambda: legs.count() == 3)  # the company's Local channel, the operator, the visitor
    assert [leg.callee for leg in legs][1:] == [OPERATOR_STAYS, VISITOR_WAITS]

    page.reload()
    assert page.locator(".card dd").first.inner_text() == CallRequest.Status.COMPLETED.label
    assert page.get_by_role("button", name="Call back").count() == 0
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    callback_row = rows.nth(1).inner_text()
    assert f"{CallAttempt.Kind.CALLBACK.label} by alice" in callback_row
    assert f"{CallAttempt.Status.COMPLETED.label} — bridged" in callback_row
    page.screenshot(path=screenshot_dir / "c2c-call-back.png", full_page=True)
