import datetime as dt
from pathlib import Path

import pytest

from click2call.models import CallAttempt, CallRequest, CommentType, Operator
from click2call.services.requests import call_request_create
from click2call.tasks import dial_attempt
from telephony.models import CallRecord
from telephony.testing import wait_for
from tests.click2call.conftest import OPERATOR_BUSY, OPERATOR_STAYS, VISITOR_WAITS
from tests.click2call.factories import CallAttemptFactory, CallRequestFactory, CampaignFactory
from tests.factories import CompanyFactory, UserFactory
from tests.portal_checks import assert_no_word_broken, assert_nothing_clipped
from tests.telephony.factories import CallRecordFactory

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
    assert page.locator(".card dd").first.inner_text() == "Failed calling the company"
    page.get_by_role("button", name="Call back").click()
    assert f"Calling back {VISITOR_WAITS}" in page.locator(".messages").inner_text()

    wait_for(lambda: CallRequest.objects.filter(pk=request.pk, status="COMPLETED").exists(), timeout=15)
    callback = request.attempts.get(seq=2)
    assert (callback.kind, callback.first_party, callback.status) == ("callback", "company", "COMPLETED")
    legs = CallRecord.objects.filter(app_ref=callback.app_ref).order_by("started_at", "id")
    wait_for(lambda: legs.count() == 3)  # the company's Local channel, the operator, the visitor
    assert [leg.callee for leg in legs][1:] == [OPERATOR_STAYS, VISITOR_WAITS]

    page.reload()
    assert page.locator(".card dd").first.inner_text() == "Completed"
    assert page.get_by_role("button", name="Call back").count() == 0
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    callback_row = rows.nth(1).inner_text()
    assert "Call back from the portal by alice" in callback_row
    assert "Completed: the company and the visitor were put through" in callback_row
    page.screenshot(path=screenshot_dir / "c2c-call-back.png", full_page=True)


# What reached people before: codes of the database, of Asterisk and of the dialplan.
RAW_CODES = [
    "no_answer",
    "NOANSWER",
    "CHANUNAVAIL",
    "FAILED_",
    "FAILED CALLING",
    "NO ANSWER",
    "Local/",
    "platform-click2call",
    "cause 1",
    "dialing:",
    "first party:",
]


def busy_request(company, user):
    """A request as the portal gets it in real use: a try the company's line refused, a try the
    visitor missed, and a call back from the portal put through by a Local channel."""
    campaign = CampaignFactory(company=company, name="Spring sale")
    call = CallRequestFactory(
        campaign=campaign, number="+33612345010", status="COMPLETED", tries=2, region="Île-de-France"
    )
    CallRequestFactory(
        campaign=CampaignFactory(company=company, name="Winter heating maintenance offers"),
        number="+33612345011",
        status="FAILED_USER",
        tries=3,
        name="Marie-Christine Delacroix-Montgomery",
        destination="France - Mobile - Bouygues Telecom",
        region="Provence-Alpes-Côte d'Azur",
    )
    at = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)

    def attempt(seq, status, detail, first_party="visitor", kind="auto", legs=()):
        row = CallAttemptFactory(
            request=call,
            seq=seq,
            status=status,
            detail=detail,
            first_party=first_party,
            kind=kind,
            requested_by=user if kind == "callback" else None,
        )
        CallAttempt.objects.filter(pk=row.pk).update(
            created_at=at + dt.timedelta(minutes=seq), finished_at=at + dt.timedelta(minutes=seq, seconds=40)
        )
        parent = None
        for n, (callee, disposition, billsec, cause, cause_text) in enumerate(legs):
            leg = CallRecordFactory(
                company=company,
                app="click2call",
                app_ref=row.app_ref,
                parent=parent,
                callee=callee,
                disposition=disposition,
                billsec=billsec,
                duration=billsec + 5,
                hangup_cause=cause,
                hangup_cause_text=cause_text,
                state="ended",
                started_at=at + dt.timedelta(minutes=seq, seconds=n * 5),
            )
            parent = parent or leg
        return row

    attempt(
        1,
        "FAILED_COMPANY",
        "dialing: CHANUNAVAIL",
        legs=[
            ("+33612345010", "ANSWERED", 21, 16, "Normal Clearing"),
            ("5552003", "NO ANSWER", 0, 19, "No answer"),
            ("5552004", "FAILED", 0, 66, "Channel not implemented"),
        ],
    )
    attempt(
        2,
        "FAILED_USER",
        "first party: no_answer",
        legs=[
            ("+33612345010", "NO ANSWER", 0, 19, "No answer"),
        ],
    )
    attempt(
        3,
        "COMPLETED",
        "bridged",
        first_party="company",
        kind="callback",
        legs=[
            ("Local/s@platform-click2call-company/n", "ANSWERED", 95, 16, "Normal Clearing"),
            ("5552001", "ANSWERED", 90, 16, "Normal Clearing"),
            ("+33612345010", "ANSWERED", 88, 16, "Normal Clearing"),
        ],
    )
    return call


def test_calls_and_attempts_say_words_and_fit_at_1280_and_375(live_server, browser):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    user = UserFactory(company=company, username="alice")
    call = busy_request(company, user)
    shots = Path("/tmp/ui-shots")
    shots.mkdir(exist_ok=True)

    for width in (1280, 375):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        log_in(page, live_server)
        page.goto(f"{live_server.url}/portal/acme/click2call/calls/")
        page.screenshot(path=shots / f"c2c-calls-words-{width}.png", full_page=True)
        assert page.locator("tbody td[data-label=Status]").all_inner_texts() == [
            "Failed calling the visitor",
            "Completed",
        ]
        assert page.locator("tbody td[data-label=Tries]").first.is_visible()
        assert_nothing_clipped(page)

        page.goto(f"{live_server.url}/portal/acme/click2call/calls/{call.pk}/")
        page.screenshot(path=shots / f"c2c-call-words-{width}.png", full_page=True)
        text = page.locator("main").inner_text()
        assert [code for code in RAW_CODES if code in text] == []
        outcomes = page.locator("td[data-label=Outcome]").all_inner_texts()
        assert outcomes == [
            "Failed calling the company: the company could not be reached (line unavailable)",
            "Failed calling the visitor: the visitor did not answer",
            "Completed: the company and the visitor were put through",
        ]
        callback_legs = page.locator("tbody tr").nth(2)
        assert "your operators: Answered, 95 s (hung up)" in callback_legs.inner_text()
        for column in ("Try", "Second party's legs, as rung", "Started", "Ended"):
            assert page.locator(f'td[data-label="{column}"]').first.is_visible()
        assert_nothing_clipped(page)
        assert_no_word_broken(page, "table.attempts td")
        context.close()


def test_a_comment_type_gets_as_many_fields_as_it_needs(live_server, page):
    company = CompanyFactory(name="Acme Repairs", slug="acme")
    UserFactory(company=company, username="alice")
    log_in(page, live_server)
    page.goto(f"{live_server.url}/portal/acme/click2call/comment-types/new/")
    assert page.locator("fieldset.field-row").count() == 2
    add = page.get_by_role("button", name="Add a field")
    add.click()
    add.click()
    assert page.locator("fieldset.field-row").count() == 4
    page.fill("#id_name", "Follow-up")
    for n, (name, kind) in enumerate([("Reason", "text"), ("Amount", "number"), ("Due", "date")]):
        page.fill(f"#id_fields-{n}-name", name)
        page.select_option(f"#id_fields-{n}-kind", kind)
    page.screenshot(path="/tmp/ui-shots/c2c-comment-type-form.png", full_page=True)
    page.get_by_role("button", name="Save").click()
    assert "Comment type Follow-up saved." in page.locator(".messages").inner_text()
    kind = CommentType.objects.get(company=company, name="Follow-up")
    assert list(kind.fields.order_by("position").values_list("name", "kind")) == [
        ("Reason", "text"),
        ("Amount", "number"),
        ("Due", "date"),
    ]
