"""Every page of the company portal at 1280 and 375 px, with the data real use gives it: no table
or page scrolls sideways (a hidden column is a hidden fact) and no raw code of the database, of
Asterisk or of the dialplan reaches the page."""

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from click2call.models import Issuer
from click2call.services.invoices import invoice_issue
from queues.models import Agent
from queues.services.events import queue_events_emit
from tests.click2call.factories import (
    BlockedPrefixFactory,
    CallAttemptFactory,
    CallRequestFactory,
    CampaignFactory,
    OperatorFactory,
)
from tests.click2call.invoicing import completed
from tests.factories import CompanyFactory, UserFactory
from tests.portal_checks import assert_nothing_clipped
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory, TierFactory
from tests.telephony.factories import CallRecordFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RAW = [
    "FAILED_",
    "FAILED CALLING",
    "NO ANSWER",
    "NOANSWER",
    "CHANUNAVAIL",
    "Local/",
    "no_answer",
    "Logged Out",
]


def seed(company):
    start = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    campaign = CampaignFactory(company=company, name="Winter heating maintenance offers")
    OperatorFactory(company=company, name="Front desk of the Marseille workshop", number="+33491000000")
    BlockedPrefixFactory(company=company, prefix="3389", reason="premium rate numbers, never called back")
    call = CallRequestFactory(
        campaign=campaign,
        status="FAILED_COMPANY",
        name="Marie-Christine Delacroix-Montgomery",
        region="Provence-Alpes-Côte d'Azur",
        note="About the boiler in the cellar, after 6 pm please",
    )
    attempt = CallAttemptFactory(request=call, seq=1, status="FAILED_COMPANY", detail="dialing: CHANUNAVAIL")
    first = CallRecordFactory(
        company=company,
        app="click2call",
        app_ref=attempt.app_ref,
        callee=call.number,
        disposition="ANSWERED",
        started_at=start,
        billsec=20,
        hangup_cause=16,
        hangup_cause_text="Normal Clearing",
    )
    CallRecordFactory(
        company=company,
        app="click2call",
        app_ref=attempt.app_ref,
        parent=first,
        disposition="FAILED",
        callee="Local/s@platform-click2call-company/n",
        started_at=start,
        hangup_cause=66,
    )
    queue = QueueFactory(company=company, name="support")
    agent = AgentFactory(company=company, name="1000", status=Agent.Status.LOGGED_OUT)
    TierFactory(queue=queue, agent=agent)
    MemberFactory(queue=queue, state="Abandoned", ended_at=timezone.now(), cancel_reason="TIMEOUT")
    queue_events_emit(
        company=company, events=[("agent-status-change", None, agent, {"CC-Agent-Status": "On Break"})]
    )
    Issuer.objects.create(name="Operator SAS", address="1 rue du Port", number_prefix="INV", default=True)
    completed(campaign, 3, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    invoice_issue(company=company, period_start=dt.date(2026, 11, 1), now=start + dt.timedelta(days=9))
    return {"call": call.pk, "record": first.pk, "campaign": campaign.pk, "tariff": campaign.tariff_id,
            "agent": agent.pk}  # fmt: skip


PAGES = [
    "",
    "users/",
    "telephony/calls/",
    "telephony/calls/{record}/",
    "telephony/webhooks/",
    "telephony/webhooks/secret/",
    "telephony/push-tokens/",
    "click2call/calls/",
    "click2call/calls/{call}/",
    "click2call/campaigns/",
    "click2call/campaigns/{campaign}/",
    "click2call/campaigns/{campaign}/edit/",
    "click2call/operators/",
    "click2call/tariffs/",
    "click2call/tariffs/{tariff}/",
    "click2call/blocked/",
    "click2call/invoices/",
    "click2call/comment-types/",
    "click2call/comment-types/new/",
    "queues/",
    "queues/agents/",
    "queues/agents/{agent}/",
    "queues/reports/queues/",
    "queues/reports/agents/",
    "queues/events/",
]


@pytest.mark.parametrize("width", [1280, 375])
def test_every_portal_page_fits_and_says_words(live_server, browser, width):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="alice")
    ids = seed(company)
    shots = Path("/tmp/ui-shots/sweep")
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")
    failures = {}
    for path in PAGES:
        url = f"{live_server.url}/portal/acme/{path.format(**ids)}"
        response = page.goto(url)
        name = path.format(**ids).strip("/").replace("/", "-") or "home"
        page.screenshot(path=shots / f"{name}-{width}.png", full_page=True)
        assert response.status == 200, url
        text = page.locator("main").inner_text()
        try:
            assert_nothing_clipped(page)
            assert [raw for raw in RAW if raw in text] == []
        except AssertionError as error:
            failures[path] = str(error)
    context.close()
    assert failures == {}
