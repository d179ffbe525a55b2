import datetime as dt
from pathlib import Path

import pytest

from telephony.models import CallRecord
from tests.factories import CompanyFactory, UserFactory
from tests.portal_checks import assert_nothing_clipped

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


def seed_calls(company, now):
    for n, (callee, disposition, billsec) in enumerate(
        [("0033612345678", "ANSWERED", 125), ("5552002", "BUSY", 0), ("5551003", "NO ANSWER", 0)]
    ):
        CallRecord.objects.create(
            source="ami:1",
            uniqueid=f"p{n}",
            company=company,
            app="click2call",
            caller="+33 1 23 45 67 89",
            callee=callee,
            disposition=disposition,
            started_at=now - dt.timedelta(seconds=n),
            duration=billsec + 5,
            billsec=billsec,
        )


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")


def test_calls_are_readable_on_a_phone(live_server, browser, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="alice")
    seed_calls(company, dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC))
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/portal/acme/telephony/calls/")
    page.screenshot(path=screenshot_dir / "calls-phone.png", full_page=True)

    first = page.locator("tbody tr").first
    for cell, text in [("td.callee", "0033612345678"), ("td.outcome", "Answered")]:
        box = first.locator(cell).bounding_box()
        assert first.locator(cell).is_visible() and text in first.locator(cell).inner_text()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, (cell, box)
    # Each value is labelled, the header row being out of sight.
    label = first.locator("td.callee").evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Callee"'
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing to scroll sideways to
    context.close()


def test_home_shows_today_and_searches_by_number(live_server, page, screenshot_dir):
    from django.utils import timezone

    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="alice")
    seed_calls(company, timezone.now())
    log_in(page, live_server, "alice")
    page.wait_for_url(f"{live_server.url}/portal/acme/")
    assert page.locator('[data-figure="calls-today"]').inner_text() == "3"
    assert page.locator('[data-figure="answered-rate-today"]').inner_text() == "33 %"
    assert page.locator('[data-figure="billed-minutes-today"]').inner_text() == "3"
    page.screenshot(path=screenshot_dir / "home-figures.png", full_page=True)

    page.fill("input[name=number]", "61 23 45")
    page.click("text=Search")
    page.wait_for_url("**/telephony/calls/?number=*")
    assert page.locator("tbody tr").count() == 1
    assert "0033612345678" in page.locator("tbody tr").inner_text()
    assert page.locator("input[name=number]").input_value() == "61 23 45"
    page.screenshot(path=screenshot_dir / "calls-by-number.png", full_page=True)


def test_every_portal_page_fits_a_phone(live_server, browser, screenshot_dir, settings):
    from telephony.models import WebhookDelivery

    settings.DEBUG = False  # the 404 page as production shows it
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris", webhook_url="")
    UserFactory(company=company, username="alice", first_name="Alice", last_name="Longname-Martin")
    seed_calls(company, dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC))
    WebhookDelivery.objects.create(
        company=company,
        event="hangup",
        payload={"sessionid": "1700000000.123456"},
        url="https://hooks.example.com/a/rather/long/path",
        last_status_code=503,
        last_error="Service Unavailable: upstream timed out after 10 seconds",
    )
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    log_in(page, live_server, "alice")
    call = CallRecord.objects.get(uniqueid="p0")
    for name, path in [
        ("home", "/portal/acme/"),
        ("call", f"/portal/acme/telephony/calls/{call.pk}/"),
        ("webhooks", "/portal/acme/telephony/webhooks/"),
        ("users", "/portal/acme/users/"),
        ("404", "/portal/acme/nowhere/"),
    ]:
        page.goto(f"{live_server.url}{path}")
        page.screenshot(path=screenshot_dir / f"phone-{name}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, name
        assert page.locator("h1").count() == 1, name
    assert page.locator("h1").inner_text() == "Page not found"
    context.close()


def test_call_pages_say_words_not_codes_at_1280_and_375(live_server, browser):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="alice")
    start = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    operators = CallRecord.objects.create(
        source="ami:1",
        uniqueid="cb1",
        company=company,
        app="click2call",
        app_ref="attempt:7",
        caller="5550000",
        callee="Local/s@platform-click2call-company/n",
        disposition="ANSWERED",
        started_at=start,
        duration=40,
        billsec=38,
        hangup_cause=16,
        hangup_cause_text="Normal Clearing",
    )
    CallRecord.objects.create(
        source="ami:1",
        uniqueid="cb2",
        company=company,
        app="click2call",
        parent=operators,
        caller="5550000",
        callee="5552003",
        disposition="NO ANSWER",
        started_at=start + dt.timedelta(seconds=2),
        hangup_cause=19,
        hangup_cause_text="No answer",
    )
    shots = Path("/tmp/ui-shots")
    shots.mkdir(exist_ok=True)
    raw = ["NO ANSWER", "ANSWERED", "Local/", "platform-", "outbound", "attempt:7", "cause 1", "Clearing"]
    for width in (1280, 375):
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        log_in(page, live_server, "alice")
        page.goto(f"{live_server.url}/portal/acme/telephony/calls/")
        page.screenshot(path=shots / f"calls-words-{width}.png", full_page=True)
        text = page.locator("main table").inner_text()
        assert [code for code in raw if code in text] == []
        assert page.locator("td.outcome").all_inner_texts() == ["No answer", "Answered"]
        assert page.locator("td.callee").all_inner_texts() == ["5552003", "your operators"]
        assert page.locator("option[value='NO ANSWER']").inner_text() == "No answer"
        assert_nothing_clipped(page)

        page.goto(f"{live_server.url}/portal/acme/telephony/calls/{operators.pk}/")
        page.screenshot(path=shots / f"call-words-{width}.png", full_page=True)
        text = page.locator("main").inner_text()
        assert [code for code in raw if code in text] == []
        assert "Answered (hung up)" in text and "Outbound" in text and "Click2call" in text
        assert_nothing_clipped(page)
        context.close()
