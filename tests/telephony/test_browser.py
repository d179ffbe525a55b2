import datetime as dt

import pytest

from telephony.models import CallRecord
from tests.factories import CompanyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_company_user_reads_and_filters_its_calls(live_server, page, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="alice")
    start = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    for n, (callee, disposition, billsec) in enumerate(
        [("5551001", "ANSWERED", 42), ("5552002", "BUSY", 0), ("5551003", "NO ANSWER", 0)]
    ):
        CallRecord.objects.create(
            source="ami:1",
            uniqueid=f"c{n}",
            company=company,
            app="click2call",
            caller="5550000",
            callee=callee,
            disposition=disposition,
            started_at=start + dt.timedelta(minutes=n),
            answered_at=start if billsec else None,
            ended_at=start + dt.timedelta(minutes=n, seconds=billsec + 5),
            duration=billsec + 5,
            billsec=billsec,
        )
    CallRecord.objects.create(source="ami:1", uniqueid="other", company=CompanyFactory(), callee="5559999")

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")
    page.click("nav >> text=Calls")
    page.wait_for_url(f"{live_server.url}/portal/acme/telephony/calls/")
    rows = page.locator("tbody tr")
    assert rows.count() == 3
    assert "5559999" not in page.content()
    # Shown in the company's zone: 09:00 UTC is 10:00 in Paris.
    assert "2026-11-23 10:00:00" in rows.nth(2).inner_text()
    page.screenshot(path=screenshot_dir / "calls.png", full_page=True)

    page.select_option("select[name=disposition]", "BUSY")
    page.click("text=Filter")
    assert page.locator("tbody tr").count() == 1
    assert "5552002" in page.locator("tbody tr").inner_text()

    page.click("tbody tr a")
    assert "Busy" in page.locator("dl").inner_text() or "BUSY" in page.locator("dl").inner_text()
    page.screenshot(path=screenshot_dir / "call-detail.png", full_page=True)
