"""What a call record is folded from is evidence, not guesswork: a caller adopted on a Local
channel's ;2 half is folded to its end; an end the reconcile guessed gives way to Asterisk's; and
a call begun under another session takes what CoreShowChannels and its Cdr say.

The events copy the headers Asterisk 22.10.1 sent in tests/pbxsim/apps/q-demo-call.ami
(`manage.py call 5551020`: the caller's ;2 half enters [platform-queue])."""

import datetime as dt
import random
import time

import pytest

from telephony.models import CallRecord
from telephony.services import calls, originate
from telephony.transitions import LOST_TEXT
from tests.factories import CompanyFactory
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db

# A minute ago: the reconcile's guess (now) is later than every real end below.
T0 = time.time() - 60
ONE = "Local/5551020@phones-00000024;1"
TWO = "Local/5551020@phones-00000024;2"
AGENT_TWO = "Local/5552001@phones-00000025;2"


def event(name, at, **headers):
    return {"Event": name, "Timestamp": f"{T0 + at:.6f}", "_received": T0 + at + 0.01, **headers}


def at(seconds):
    return dt.datetime.fromtimestamp(T0 + seconds, dt.UTC)


def channel(name, uid, at_, state="6", **headers):
    fields = {"Channel": name, "Uniqueid": uid, "Linkedid": "call-x", "ChannelState": state}
    return event(name=headers.pop("Event"), at=at_, **fields, **headers)


def demo_start():
    """Until the queue's AGI adopts the ;2 half: the pair is created and answered."""
    return [
        channel(ONE, "call-x", 0.0, "0", Event="Newchannel", Context="phones", Exten="5551020"),
        channel(TWO, "call-x;2", 0.0001, "4", Event="Newchannel", Context="phones", Exten="5551020"),
        channel(TWO, "call-x;2", 0.0006, Event="Newstate", Context="phones"),
        channel(ONE, "call-x", 0.0008, Event="Newstate", Context="phones"),
        event("OriginateResponse", 0.0009, Channel=ONE, Uniqueid="call-x", Response="Success", Reason="4"),
        # the agent's leg: a Local pair of which only the ;1 is a leg
        channel(AGENT_TWO, "cc-1;2", 0.2, "4", Event="Newchannel", Context="phones", Exten="5552001"),
    ]


def cdr(name, uid, at_, duration, billsec, disposition="ANSWERED"):
    return event(
        "Cdr",
        at_,
        Channel=name,
        UniqueID=uid,
        Source="5550000",
        Duration=str(duration),
        BillableSeconds=str(billsec),
        Disposition=disposition,
    )


def hangup(name, uid, at_, cause="16", state="6", text="Normal Clearing", context="platform-queue-wait"):
    return channel(
        name,
        uid,
        at_,
        state,
        Event="Hangup",
        Context=context,
        CallerIDNum="5550000",
        Cause=cause,
        **{"Cause-txt": text},
    )


def demo_end(hangup_at=3.2):
    """The caller hangs up while waiting: Asterisk writes the Cdr forks first, then the Hangups."""
    return [
        cdr(TWO, "call-x;2", hangup_at - 0.001, 3, 3),
        cdr(TWO, "call-x;2", hangup_at - 0.0008, 0, 0),
        cdr(ONE, "call-x", hangup_at - 0.0005, 3, 3),
        hangup(TWO, "call-x;2", hangup_at),
        hangup(ONE, "call-x", hangup_at + 0.0001, context="platform-hold"),
        hangup(AGENT_TWO, "cc-1;2", hangup_at + 0.0002, context="phones"),
    ]


def fold(server, events):
    return calls.call_events_fold(server_id=server.pk, events=events)


def adopt(server, company):
    return calls.call_record_adopt(
        server_id=server.pk, uniqueid="call-x;2", company_id=company.pk, app="queues", app_ref="member-1"
    )


def view(record):
    record.refresh_from_db()
    return {
        name: getattr(record, name)
        for name in (
            "channel",
            "linkedid",
            "caller",
            "callee",
            "started_at",
            "answered_at",
            "ended_at",
            "duration",
            "billsec",
            "disposition",
            "hangup_cause",
            "hangup_cause_text",
            "state",
        )
    }


def test_an_adopted_local_two_half_is_folded_to_its_end():
    """The ;2 half the queue adopted ends with its Hangup (a CallEnded for the queue), timed as its
    ;1 half was, since the pair starts and is answered together; unadopted ;2 halves stay no legs."""
    server, company = PbxServerFactory(), CompanyFactory()
    fold(server, demo_start())
    assert not CallRecord.objects.filter(channel__endswith=";2").exists()
    caller = adopt(server, company)

    typed = fold(server, demo_end())

    ended = [e for e in typed if type(e).__name__ == "CallEnded" and e.record.uniqueid == "call-x;2"]
    assert len(ended) == 1 and ended[0].app == "queues"
    assert ended[0].record.answered_at == at(0.0008) and ended[0].record.hangup_cause == 16
    assert view(caller) == {
        "channel": TWO,
        "linkedid": "call-x",
        "caller": "5550000",
        "callee": "5551020",
        "started_at": at(0.0),
        "answered_at": at(0.0008),
        "ended_at": at(3.2),
        "duration": 3,
        "billsec": 3,
        "disposition": "ANSWERED",
        "hangup_cause": 16,
        "hangup_cause_text": "Normal Clearing",
        "state": "ended",
    }
    assert (caller.company, caller.app, caller.app_ref) == (company, "queues", "member-1")
    assert sorted(CallRecord.objects.values_list("uniqueid", flat=True)) == ["call-x", "call-x;2"]


def test_an_adopted_local_two_half_is_idempotent_under_duplicates_and_reordering():
    in_order, mixed = PbxServerFactory(), PbxServerFactory()
    company = CompanyFactory()
    for server in (in_order, mixed):
        fold(server, demo_start())
        adopt(server, company)
    fold(in_order, demo_start() + demo_end())  # its own Newstate, once adopted, times its answer
    events = demo_end() + demo_start() + demo_end()[::2]
    random.Random(3).shuffle(events)
    kinds = []
    for start in range(0, len(events), 3):
        kinds += [
            type(e).__name__
            for e in fold(mixed, events[start : start + 3])
            if e.record.uniqueid == "call-x;2"
        ]
    kinds += [type(e).__name__ for e in fold(mixed, demo_end())]
    assert sorted(kinds) == ["CallAnswered", "CallEnded", "CallStarted"]  # each once
    first = view(CallRecord.objects.get(server=in_order, uniqueid="call-x;2"))
    assert view(CallRecord.objects.get(server=mixed, uniqueid="call-x;2")) == first


def test_a_local_two_half_adopted_without_its_pair_known_is_timed_by_its_hangup_and_cdr():
    """No ;1 record to share (events lost): Up at its Hangup means answered; the Cdr counts back."""
    server, company = PbxServerFactory(), CompanyFactory()
    caller = adopt(server, company)
    fold(server, [hangup(TWO, "call-x;2", 3.2)])
    caller.refresh_from_db()
    assert (caller.disposition, caller.ended_at, caller.answered_at) == ("ANSWERED", at(3.2), at(3.2))
    fold(server, [cdr(TWO, "call-x;2", 3.201, 3, 3), cdr(TWO, "call-x;2", 3.2012, 0, 0)])
    assert view(caller) | {"started_at": None} == view(caller) | {
        "answered_at": at(0.2),
        "started_at": None,
        "billsec": 3,
        "duration": 3,
        "disposition": "ANSWERED",
    }


def claim(server, uniqueid="out-1"):
    record = originate.call_record_claim(
        server=server, uniqueid=uniqueid, company=CompanyFactory(), app="tests", callee="5551001"
    )
    originate.call_record_send(record_id=record.pk)
    return record


def reconcile(server, live=(), channels=None):
    listed_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    extra = {} if channels is None else {"channels": channels}
    return calls.call_records_reconcile(
        server_id=server.pk, live_uniqueids=set(live), listed_at=listed_at, **extra
    )


LEG = "Local/5551001@phones-00000030;1"


def leg_events(uid="out-1"):
    return [
        event(
            "Newchannel",
            0.0,
            Channel=LEG,
            Uniqueid=uid,
            Linkedid=uid,
            Context="phones",
            Exten="5551001",
            CallerIDNum="5550000",
        ),
        event("Newstate", 1.0, Channel=LEG, Uniqueid=uid, ChannelState="6"),
    ]


def test_asterisks_end_replaces_the_end_the_reconcile_guessed():
    server = PbxServerFactory()
    record = claim(server)
    fold(server, leg_events())
    guessed = reconcile(server)
    assert [e.record.hangup_cause_text for e in guessed] == [LOST_TEXT]
    assert view(record)["ended_at"] > at(60)  # now: the guess

    real = [hangup(LEG, "out-1", 5.25, context="platform-hold"), cdr(LEG, "out-1", 5.26, 5, 4)]
    # The apps and the webhook had the guess's CallEnded: they are told the corrected end, once.
    corrected = fold(server, real)
    assert [type(e).__name__ for e in corrected] == ["CallEnded"]
    told = corrected[0].record
    assert (told.ended_at, told.duration, told.disposition) == (at(5.25), 5, "ANSWERED")
    assert told.hangup_cause_text == "Normal Clearing"
    assert fold(server, real[::-1]) == []  # again, reordered: nothing changes
    assert view(record) == view(record) | {
        "answered_at": at(1.0),
        "ended_at": at(5.25),
        "duration": 5,
        "billsec": 4,
        "disposition": "ANSWERED",
        "hangup_cause": 16,
        "hangup_cause_text": "Normal Clearing",
    }


def test_a_real_outcome_replaces_the_failure_the_reconcile_guessed():
    """An unanswered leg the reconcile closed as FAILED: its real Hangup says busy."""
    server = PbxServerFactory()
    record = claim(server)
    fold(server, leg_events()[:1])
    reconcile(server)
    assert view(record)["disposition"] == "FAILED"
    fold(server, [hangup(LEG, "out-1", 2.0, cause="17", state="0", text="User busy", context="phones")])
    assert view(record) == view(record) | {"ended_at": at(2.0), "disposition": "BUSY", "hangup_cause": 17}


def test_a_failure_the_pbx_told_outlives_the_correction_of_a_guessed_end():
    """A DialEnd said CHANUNAVAIL (a real FAILED) before the connection dropped; the reconcile
    closed the leg; its real Hangup (Normal Clearing, which alone would say NO ANSWER) keeps FAILED."""
    server = PbxServerFactory()
    record = claim(server)
    unavailable = event("DialEnd", 0.5, DestChannel=LEG, DestUniqueid="out-1", DialStatus="CHANUNAVAIL")
    fold(server, [*leg_events()[:1], unavailable])
    reconcile(server)
    assert view(record)["disposition"] == "FAILED"
    corrected = fold(server, [hangup(LEG, "out-1", 2.0, state="0", context="phones")])
    assert [(type(e).__name__, e.record.disposition) for e in corrected] == [("CallEnded", "FAILED")]
    assert view(record) == view(record) | {"ended_at": at(2.0), "disposition": "FAILED", "hangup_cause": 16}


def test_a_cdr_alone_replaces_the_end_the_reconcile_guessed():
    """The Hangup was lost with the connection; the Cdr, written at the channel's end, still came."""
    server = PbxServerFactory()
    record = claim(server)
    fold(server, leg_events())
    reconcile(server)
    fold(server, [cdr(LEG, "out-1", 5.25, 5, 4)])
    later = hangup(LEG, "out-1", 5.2502, context="platform-hold")
    assert view(record) == view(record) | {"ended_at": at(5.25), "billsec": 4, "hangup_cause_text": ""}
    fold(server, [later])  # then Asterisk's Hangup after all: the latest real end
    assert view(record) == view(record) | {"ended_at": at(5.2502), "billsec": 4, "hangup_cause": 16}


def listing(uid, name, age, *, state="6", bridge="", received=None, **headers):
    return {
        "Event": "CoreShowChannel",
        "Channel": name,
        "ChannelState": state,
        "CallerIDNum": "5550000",
        "ConnectedLineNum": "5550000",
        "Context": "platform-hold",
        "Exten": "s",
        "Uniqueid": uid,
        "Linkedid": uid,
        "Duration": age,
        "BridgeId": bridge,
        "_received": T0 + 10 if received is None else received,
        **headers,
    }


def test_a_call_begun_under_another_session_takes_what_the_listing_and_its_cdr_say():
    """Its Newchannel and answer were never folded here: CoreShowChannels lists it Up, 8 s old,
    in a bridge; then it ends, and its Cdr says it was answered 9 s before its end."""
    server = PbxServerFactory()
    typed = reconcile(server, live={"span-1"}, channels=[listing("span-1", LEG, "00:00:08", bridge="b-1")])
    assert [type(e).__name__ for e in typed] == ["CallStarted", "CallAnswered"]
    record = CallRecord.objects.get(uniqueid="span-1")
    assert view(record) == view(record) | {
        "channel": LEG,
        "caller": "5550000",
        "callee": "5551001",
        "started_at": at(2.0),
        "answered_at": at(10.0),  # no later than the listing
        "state": "answered",
    }
    assert record.bridge_id == "b-1"
    fold(server, [hangup(LEG, "span-1", 12.0, context="platform-hold"), cdr(LEG, "span-1", 12.001, 12, 9)])
    assert view(record) == view(record) | {
        "started_at": at(0.0),
        "answered_at": at(3.0),
        "ended_at": at(12.0),
        "duration": 12,
        "billsec": 9,
        "disposition": "ANSWERED",
    }
    reconcile(server, live={"span-1"}, channels=[listing("span-1", LEG, "00:00:11")])
    assert view(record)["answered_at"] == at(3.0)  # a listing never moves a known time


def test_a_listing_never_overrides_what_the_events_told():
    server = PbxServerFactory()
    record = claim(server)
    fold(server, leg_events())
    before = view(record)
    assert (
        reconcile(
            server, live={"out-1"}, channels=[listing("out-1", "Local/2@x-1;1", "00:00:30", CallerIDNum="1")]
        )
        == []
    )
    assert view(record) == before
    # An untracked ;2 half listed gets no record either.
    reconcile(server, live={"x;2"}, channels=[listing("x;2", "Local/1@phones-1;2", "00:00:01")])
    assert not CallRecord.objects.filter(uniqueid="x;2").exists()
