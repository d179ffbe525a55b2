"""The portal home's figures count calls, not legs: one call per Linkedid, answered when any of its
legs was, on the day its first leg started."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from telephony.models import CallRecord
from telephony.selectors import call_figures_for_company
from tests.factories import CompanyFactory
from tests.telephony.factories import PbxServerFactory
from tests.telephony.test_call_records import EPOCH, claim, fold, recorded_events

pytestmark = pytest.mark.django_db


def record(company, uniqueid, linkedid, disposition="ANSWERED", started_at=None, billsec=0, **more):
    return CallRecord.objects.create(
        source="ami:1",
        uniqueid=uniqueid,
        linkedid=linkedid,
        company=company,
        started_at=started_at or timezone.now(),
        disposition=disposition,
        billsec=billsec,
        duration=billsec,
        **more,
    )


def test_a_queue_call_with_agents_rung_is_one_answered_call():
    """The issue's home: legs counted as calls. One caller; an agent who did not answer, another who
    did (their legs claimed as legs of the caller's call); a click2call whose company did not answer."""
    company = CompanyFactory()
    now = timezone.now()
    record(company, "in-1", "in-1", started_at=now - dt.timedelta(seconds=60), billsec=50)
    record(company, "cc-1", "in-1", disposition="NO ANSWER", started_at=now - dt.timedelta(seconds=55))
    record(company, "cc-2", "in-1", started_at=now - dt.timedelta(seconds=50), billsec=40)
    visitor = record(company, "c2c-1", "c2c-1", started_at=now - dt.timedelta(seconds=30), billsec=20)
    record(company, "c2c-1-b", "c2c-1", disposition="NO ANSWER", parent=visitor)
    record(company, "c2c-2", "c2c-2", disposition="BUSY")

    figures = call_figures_for_company(company=company)

    assert (figures["calls_today"], figures["answered_today"], figures["answered_rate_today"]) == (3, 2, 67)
    assert (figures["calls_month"], figures["answered_month"]) == (3, 2)
    assert figures["billed_minutes_today"] == 2  # 50 + 40 + 20 s: the lines held


def test_a_call_counts_on_the_day_its_first_leg_started():
    company = CompanyFactory()
    midnight = timezone.localtime(timezone.now(), company.tzinfo).replace(hour=0, minute=0, second=0)
    record(company, "in-1", "in-1", started_at=midnight - dt.timedelta(seconds=30))
    record(company, "cc-1", "in-1", started_at=midnight + dt.timedelta(seconds=5))
    figures = call_figures_for_company(company=company, now=midnight + dt.timedelta(hours=1))
    assert figures["calls_today"] == 0
    if midnight.day != 1:  # same month
        assert figures["calls_month"] == 1


def test_a_leg_joined_to_an_older_call_in_a_bridge_is_part_of_it():
    """Asterisk 22's trace: two Originates (a caller, then an agent) bridged; the agent's channel
    takes the caller's Linkedid on BridgeEnter."""
    server = PbxServerFactory()
    company = CompanyFactory()
    claim(server, company, uniqueid="call-1-1")
    claim(server, company, uniqueid="call-2-1")
    fold(server, recorded_events("hold-bridge-agent"))

    agent = CallRecord.objects.get(uniqueid="call-2-1")
    assert agent.linkedid == "call-1-1"
    figures = call_figures_for_company(company=company, now=dt.datetime.fromtimestamp(EPOCH + 60, dt.UTC))
    assert figures["calls_today"] == 1 and figures["answered_rate_today"] == 100


def test_events_out_of_order_keep_the_leg_in_the_call_it_joined():
    server = PbxServerFactory()
    company = CompanyFactory()
    claim(server, company, uniqueid="call-1-1")
    claim(server, company, uniqueid="call-2-1")
    events = recorded_events("hold-bridge-agent")
    bridge = [e for e in events if e.get("Event") == "BridgeEnter"]
    fold(server, bridge + events)  # the BridgeEnter first, then everything again
    assert CallRecord.objects.get(uniqueid="call-2-1").linkedid == "call-1-1"


def test_the_portal_call_list_has_a_row_per_call_and_its_page_every_leg(
    client, company_user, django_assert_num_queries
):
    company = company_user.company
    now = timezone.now()
    caller = record(company, "in-1", "in-1", started_at=now - dt.timedelta(seconds=60), callee="5550100")
    record(company, "cc-1", "in-1", disposition="NO ANSWER", callee="5552003")
    record(company, "cc-2", "in-1", callee="5552001")
    record(company, "c2c-2", "c2c-2", disposition="BUSY", callee="5551009")
    client.force_login(company_user)
    url = reverse("telephony:calls", args=[company.slug])

    with django_assert_num_queries(7):  # session, user, company, its permissions (2), count, page
        page = client.get(url).context["page"]
    rows = {row.uniqueid: row for row in page}
    assert set(rows) == {"in-1", "c2c-2"}
    assert (rows["in-1"].call_answered, rows["in-1"].leg_count) == (True, 3)
    assert (rows["c2c-2"].call_answered, rows["c2c-2"].leg_count) == (False, 1)
    # An agent's number finds the call it was rung for; the outcome filter is the call's.
    assert [r.uniqueid for r in client.get(url, {"number": "5552003"}).context["page"]] == ["in-1"]
    assert [r.uniqueid for r in client.get(url, {"disposition": "NO ANSWER"}).context["page"]] == []
    assert [r.uniqueid for r in client.get(url, {"disposition": "ANSWERED"}).context["page"]] == ["in-1"]
    # The CSV keeps a row per leg (the records).
    assert len(client.get(url, {"format": "csv"}).content.decode().strip().splitlines()) == 1 + 4

    body = client.get(reverse("telephony:call", args=[company.slug, caller.pk])).content.decode()
    assert "Legs of this call" in body and "5552003" in body and "5552001" in body
