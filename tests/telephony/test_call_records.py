"""Call records folded from the AMI events real Asterisk 22 sent (the reference traces)."""

import datetime as dt
import random

import pytest
from django.utils import timezone

from pbxsim.tracefile import ami_events
from telephony import handle
from telephony.models import CallRecord
from telephony.services import calls, originate
from tests.factories import CompanyFactory
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db

EPOCH = 1_795_422_307.0


def recorded_events(name):
    return ami_events(name, epoch=EPOCH)


def fold(server, events, batch=7):
    for start in range(0, len(events), batch):
        calls.call_events_fold(server_id=server.pk, events=events[start : start + batch])


def snapshot(server):
    return sorted(
        CallRecord.objects.filter(server=server).values_list(
            "uniqueid",
            "parent__uniqueid",
            "company_id",
            "app",
            "caller",
            "callee",
            "started_at",
            "answered_at",
            "ended_at",
            "duration",
            "billsec",
            "disposition",
            "hangup_cause",
        )
    )


def claim(server, company, uniqueid="call-1-1", callee="5551010", send=True):
    record = originate.call_record_claim(
        server=server,
        uniqueid=uniqueid,
        company=company,
        app="click2call",
        app_ref="request:7",
        callee=callee,
        caller="5550000",
    )
    if send:
        originate.call_record_send(record_id=record.pk)
    return record


def test_click2call_with_busy_company_gives_two_legs():
    server, company = PbxServerFactory(), CompanyFactory()
    claim(server, company)
    fold(server, recorded_events("click2call-company-busy"))

    visitor = CallRecord.objects.get(uniqueid="call-1-1")
    assert visitor.disposition == "ANSWERED"
    assert visitor.answered_at is not None and visitor.ended_at is not None
    assert (visitor.duration, visitor.billsec) == (2, 1)  # as Asterisk's own Cdr says
    company_leg = CallRecord.objects.get(parent=visitor)
    assert company_leg.callee == "5552002"
    assert company_leg.disposition == "BUSY"
    assert company_leg.billsec == 0
    assert (company_leg.company, company_leg.app, company_leg.app_ref) == (company, "click2call", "request:7")
    # The ;2 halves of Local channels are plumbing, not legs.
    assert CallRecord.objects.count() == 2
    assert not CallRecord.objects.filter(channel__endswith=";2").exists()


@pytest.mark.parametrize(
    "name", ["click2call-company-busy", "click2call-completed", "dial-time-limit-g", "originate-answer"]
)
def test_duplicated_and_reordered_events_change_nothing(name):
    events = recorded_events(name)
    in_order, shuffled = PbxServerFactory(), PbxServerFactory()
    company = CompanyFactory()
    claim(in_order, company)
    claim(shuffled, company)
    fold(in_order, events)

    mixed = events + events[::3]
    random.Random(7).shuffle(mixed)
    fold(shuffled, mixed, batch=5)
    fold(shuffled, events)  # and everything once more
    assert snapshot(in_order) == snapshot(shuffled)


def test_forked_cdr_does_not_count_twice():
    """dial-time-limit-g: Asterisk sends two ANSWERED Cdr events for the caller's channel."""
    server = PbxServerFactory()
    events = recorded_events("dial-time-limit-g")
    cdrs = [e for e in events if e["Event"] == "Cdr" and e["UniqueID"] == "call-1-1"]
    assert len(cdrs) == 2
    fold(server, events)
    fold(server, cdrs)  # and the Cdr events once more
    caller = CallRecord.objects.get(uniqueid="call-1-1")
    assert caller.disposition == "ANSWERED"
    # Asterisk split the channel's 6 s in two forks (6 s and 0 s); the leg lasted 6 s.
    assert [int(c["Duration"]) for c in cdrs] == [6, 0]
    assert caller.duration == 6


@pytest.mark.parametrize(
    ("name", "disposition", "cause"),
    [
        ("originate-busy", "BUSY", None),
        ("originate-noanswer", "NO ANSWER", 19),
        ("originate-congestion", "FAILED", None),
        ("originate-answer", "ANSWERED", 16),
    ],
)
def test_originate_outcomes(name, disposition, cause):
    server = PbxServerFactory()
    claim(server, CompanyFactory(), callee="5551001")
    fold(server, recorded_events(name))
    record = CallRecord.objects.get(uniqueid="call-1-1")
    assert record.disposition == disposition
    assert record.ended_at is not None
    if cause is not None:
        assert record.hangup_cause == cause


def test_failed_originate_without_channel_events():
    """originate-bad-channel: an unknown technology gives only an OriginateResponse (Reason 0)."""
    server = PbxServerFactory()
    claim(server, CompanyFactory(), callee="5551001")
    fold(server, recorded_events("originate-bad-channel"))
    record = CallRecord.objects.get(uniqueid="call-1-1")
    assert (record.disposition, record.billsec) == ("FAILED", 0)
    assert record.ended_at is not None


def test_events_of_unknown_or_malformed_shape_are_ignored():
    server = PbxServerFactory()
    calls.call_events_fold(
        server_id=server.pk,
        events=[
            {"Event": "Hangup", "_received": EPOCH},  # no Uniqueid
            {"Event": "FancyNewEvent", "Uniqueid": "x", "_received": EPOCH},
            {
                "Event": "Hangup",
                "Uniqueid": "y",
                "Channel": "PJSIP/a-1",
                "Cause": "not-a-number",
                "_received": EPOCH,
            },
        ],
    )
    record = CallRecord.objects.get()
    assert (record.uniqueid, record.hangup_cause, record.disposition) == ("y", None, "FAILED")


def test_a_sent_channel_id_is_never_sent_again():
    server, company = PbxServerFactory(), CompanyFactory()
    first = claim(server, company)
    with pytest.raises(originate.OriginateAlreadyClaimed) as refused:
        claim(server, company)
    assert refused.value.record.pk == first.pk


def test_a_claim_never_sent_is_handed_back_to_the_retry_once():
    server, company = PbxServerFactory(), CompanyFactory()
    unsent = claim(server, company, send=False)
    retried = claim(server, company, send=False)
    assert retried.pk == unsent.pk and retried.state == "claimed"
    originate.call_record_send(record_id=retried.pk)
    with pytest.raises(originate.OriginateAlreadyClaimed):  # a second sender loses
        originate.call_record_send(record_id=unsent.pk)


def test_an_originate_the_pbx_never_got_is_claimed_again():
    server, company = PbxServerFactory(), CompanyFactory()
    record = claim(server, company)
    originate.call_record_unsent(record_id=record.pk)
    record.refresh_from_db()
    assert (record.state, record.ended_at) == ("claimed", None)


def test_a_claim_made_sent_is_one_insert_and_a_second_sender_is_refused(django_assert_num_queries):
    server, company = PbxServerFactory(), CompanyFactory()
    call = {"server": server, "uniqueid": "one-1", "company": company, "app": "click2call", "sent": True}
    # The read, the INSERT (one commit outside a test: here the test's transaction adds a savepoint).
    with django_assert_num_queries(4):
        record = originate.call_record_claim(**call)
    assert CallRecord.objects.get(pk=record.pk).state == record.state == "sent"
    with pytest.raises(originate.OriginateAlreadyClaimed) as refused:
        originate.call_record_claim(**call)
    assert refused.value.record.pk == record.pk and refused.value.record.state == "sent"


def test_a_claim_made_earlier_is_marked_sent_by_the_sending_claim_once():
    """A queue's offer claims its agent's leg in its own transaction; the Originate's claim sends it."""
    server, company = PbxServerFactory(), CompanyFactory()
    earlier = claim(server, company, send=False)
    call = {"server": server, "uniqueid": earlier.uniqueid, "company": company, "app": "queues", "sent": True}
    sent = originate.call_record_claim(**call)
    assert sent.pk == earlier.pk and CallRecord.objects.get(pk=sent.pk).state == sent.state == "sent"
    with pytest.raises(originate.OriginateAlreadyClaimed):
        originate.call_record_claim(**call)


def test_the_originate_flow_writes_once_before_the_originate_goes_out():
    server = PbxServerFactory()
    flow = handle.originate_flow(
        handle.OriginateRequest(server=server, channel_id="once-1", channel="Local/1@phones", context="c")
    )
    steps = [next(flow)]
    record = steps[0].function(**steps[0].kwargs)
    steps.append(flow.send(record))
    assert [type(step).__name__ for step in steps] == ["Db", "Send"]
    assert steps[0].function is originate.call_record_claim and steps[0].kwargs["sent"] is True
    assert steps[1].action["ChannelId"] == "once-1"
    assert CallRecord.objects.get(uniqueid="once-1").state == "sent"


def backdate(record, seconds):
    CallRecord.objects.filter(pk=record.pk).update(updated_at=timezone.now() - dt.timedelta(seconds=seconds))


def test_reconcile_closes_calls_that_ended_unseen_in_one_batch():
    server, company = PbxServerFactory(), CompanyFactory()
    gone, live = claim(server, company, "gone-1"), claim(server, company, "live-1")
    abandoned = claim(server, company, "abandoned-1", send=False)
    fresh_claim = claim(server, company, "c-1", send=False)
    calls.call_events_fold(
        server_id=server.pk,
        events=[{"Event": "Newchannel", "Uniqueid": "gone-1", "Channel": "PJSIP/a-1", "_received": EPOCH}],
    )
    for record in (live,):
        backdate(record, 60)
    backdate(abandoned, 3600)
    listed_at = timezone.now()
    just_placed = claim(server, company, "new-1")  # sent moments before the channels were listed
    ended = calls.call_records_reconcile(server_id=server.pk, live_uniqueids={"live-1"}, listed_at=listed_at)
    assert sorted(e.record.uniqueid for e in ended) == ["abandoned-1", "gone-1"]
    for record in (gone, live, abandoned, fresh_claim, just_placed):
        record.refresh_from_db()
    assert (gone.state, gone.disposition, gone.hangup_cause_text) == (
        "ended",
        "FAILED",
        "ended while the PBX was unreachable",
    )
    assert (abandoned.state, abandoned.hangup_cause_text) == ("ended", "never sent to the PBX")
    assert live.state == just_placed.state == "sent"
    assert fresh_claim.state == "claimed"


def test_an_adopted_inbound_call_gives_its_company_to_the_legs_it_dials():
    """An AGI script tags the inbound channel; the agent leg its Dial creates follows."""
    server, company = PbxServerFactory(), CompanyFactory()
    calls.call_record_adopt(
        server_id=server.pk, uniqueid="call-1-1", company_id=company.pk, app="tickets", app_ref="line:3"
    )
    fold(server, recorded_events("click2call-completed"))
    caller = CallRecord.objects.get(uniqueid="call-1-1")
    assert (caller.direction, caller.app) == ("inbound", "tickets")
    leg = CallRecord.objects.get(parent=caller)
    assert (leg.company, leg.app, leg.app_ref) == (company, "tickets", "line:3")
