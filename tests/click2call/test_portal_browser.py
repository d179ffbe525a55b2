import datetime as dt

import pytest

from click2call.models import CallRequest
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
