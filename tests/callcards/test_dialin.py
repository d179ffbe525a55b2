"""The dial-in's services: the card and PIN check, lockouts, the card's one open call, billing."""

import datetime as dt
import logging

import pytest
from django.utils import timezone

from callcards.lifecycle import Status
from callcards.models import CardCall, CardEvent, DialInFailure, Lockout
from callcards.services import dialin
from callcards.services.dialin import DialIn, Refusal
from telephony.models import CallRecord
from telephony.services.servers import ami_source
from tests.callcards.factories import CardFactory
from tests.queues.factories import QueueFactory
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db

PIN = "12345678"
# A card id no CardFactory makes (its sequence starts at 100000000008, which a worker's first card
# gets: used as "unknown", that one was the card under test, opened with its own PIN).
UNKNOWN = "200000000006"


@pytest.fixture
def server():
    return PbxServerFactory()


@pytest.fixture
def card(server):
    queue = QueueFactory(server=server)
    return CardFactory(company=queue.company, queue=queue, pin=PIN, balance_minutes=10, warning_minutes=2)


def check(server, card_id, pin=PIN, *, phone="5550100", uniqueid="u-1"):
    return dialin.dial_in_check(
        server_id=server.pk, uniqueid=uniqueid, card_id=card_id, pin=pin, phone_number=phone, did="5559000"
    )


def leg(server, uniqueid, *, bridged=None, ended=None):
    record, _ = CallRecord.objects.update_or_create(
        source=ami_source(server.pk),
        uniqueid=uniqueid,
        defaults={"server": server, "bridged_at": bridged, "ended_at": ended},
    )
    return record


def test_a_good_card_opens_its_call_and_adopts_the_callers_leg(server, card):
    leg(server, "u-1")
    result = check(server, card.card_id)
    assert isinstance(result, DialIn)
    assert (result.balance_minutes, result.warning_minutes, result.queue) == (10, 2, card.queue.full_name)
    call = CardCall.objects.get(pk=result.card_call_id)
    assert (call.state, call.balance_minutes_start, call.phone_number, call.inbound_did) == (
        CardCall.State.QUEUED,
        10,
        "5550100",
        "5559000",
    )
    record = CallRecord.objects.get(uniqueid="u-1")
    assert (record.app, record.app_ref, record.company_id) == ("callcards", str(call.pk), card.company_id)
    assert not DialInFailure.objects.exists()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"card_id": UNKNOWN}, Refusal.UNKNOWN_CARD),
        ({"pin": "87654321"}, Refusal.WRONG_PIN),
    ],
)
def test_an_unknown_card_or_a_wrong_pin_is_a_failure_and_opens_nothing(server, card, change, reason):
    result = check(server, change.get("card_id", card.card_id), change.get("pin", PIN))
    assert result.reason == reason and result.language == ""
    failure = DialInFailure.objects.get()
    assert (failure.reason, failure.phone_number) == (reason, "5550100")
    assert not CardCall.objects.exists()


@pytest.mark.parametrize("status", [Status.HOLD, Status.VOID, Status.EMPTY, Status.SHIP, Status.CANCEL])
def test_a_card_not_active_or_used_is_refused(server, card, status):
    card.status = status
    card.save()
    assert check(server, card.card_id).reason == Refusal.NOT_DIALABLE
    assert not CardCall.objects.exists()


def test_a_used_card_is_let_in(server, card):
    card.status = Status.USED
    card.save()
    assert isinstance(check(server, card.card_id), DialIn)


def test_zero_balance_and_no_queue_are_refused(server, card):
    card.balance_minutes = 0
    card.save()
    assert check(server, card.card_id).reason == Refusal.EMPTY
    card.balance_minutes, card.queue = 5, None
    card.save()
    assert check(server, card.card_id).reason == Refusal.NO_QUEUE
    assert not CardCall.objects.exists()


def test_a_second_dial_in_on_a_card_in_use_is_refused(server, card):
    leg(server, "u-1")
    assert isinstance(check(server, card.card_id, uniqueid="u-1"), DialIn)
    assert check(server, card.card_id, uniqueid="u-2").reason == Refusal.IN_USE
    assert CardCall.objects.count() == 1


def test_an_open_call_whose_caller_is_gone_is_billed_first(server, card):
    now = timezone.now()
    leg(server, "u-1", bridged=now - dt.timedelta(seconds=150), ended=now - dt.timedelta(seconds=30))
    first = check(server, card.card_id, uniqueid="u-1")
    leg(server, "u-2")
    second = check(server, card.card_id, uniqueid="u-2")
    assert isinstance(second, DialIn)
    old = CardCall.objects.get(pk=first.card_call_id)
    assert (old.state, old.agent_talk_sec, old.agent_talk_min) == (CardCall.State.BILLED, 120, 2)
    assert second.balance_minutes == 8


def test_lockout_per_caller_number(server, card, settings):
    settings.CALLCARDS_LOCKOUT_FAILURES = 3
    for _ in range(3):
        check(server, UNKNOWN, phone="5550199")
    lock = Lockout.objects.get()
    assert (lock.kind, lock.value, lock.failures, lock.company_id) == ("caller", "5550199", 3, None)
    # the right card and PIN from that number are refused now, without saying why
    assert check(server, card.card_id, phone="5550199").reason == Refusal.LOCKED
    assert isinstance(check(server, card.card_id, phone="5550100"), DialIn)


def test_lockout_per_card_whatever_the_number(server, card, settings):
    settings.CALLCARDS_LOCKOUT_FAILURES = 3
    for n in range(3):
        check(server, card.card_id, "0000000" + str(n), phone=f"555030{n}")
    lock = Lockout.objects.get()
    assert (lock.kind, lock.value, lock.company_id) == ("card", card.card_id, card.company_id)
    assert check(server, card.card_id, phone="5550100").reason == Refusal.LOCKED
    assert not CardCall.objects.exists()


def test_a_lifted_lockout_counts_failures_afresh_and_old_ones_fall_out_of_the_window(server, card, settings):
    settings.CALLCARDS_LOCKOUT_FAILURES = 2
    check(server, UNKNOWN)
    check(server, UNKNOWN)
    Lockout.objects.update(lifted_at=timezone.now(), lifted_by="admin")
    check(server, UNKNOWN)
    assert Lockout.objects.count() == 1  # one failure since the lift
    long_ago = timezone.now() - dt.timedelta(seconds=settings.CALLCARDS_LOCKOUT_SECONDS + 1)
    DialInFailure.objects.update(at=long_ago)
    Lockout.objects.update(lifted_at=timezone.now() - dt.timedelta(hours=1))
    check(server, UNKNOWN)
    assert Lockout.objects.count() == 1


def test_no_pin_in_the_log(server, card, caplog):
    caplog.set_level(logging.DEBUG)
    check(server, card.card_id, "87654321")
    leg(server, "u-1")
    check(server, card.card_id)
    assert caplog.records and PIN not in caplog.text and "87654321" not in caplog.text


def _open(server, card, uniqueid="u-1"):
    leg(server, uniqueid)
    return check(server, card.card_id, uniqueid=uniqueid).card_call_id


def test_billing_counts_each_started_minute_from_the_agents_answer(server, card):
    call_id = _open(server, card)
    now = timezone.now()
    leg(server, "u-1", bridged=now - dt.timedelta(seconds=61), ended=now)
    call = dialin.card_call_bill(card_call_id=call_id)
    card.refresh_from_db()
    assert (call.agent_talk_sec, call.agent_talk_min, call.balance_minutes_end) == (61, 2, 8)
    assert (card.balance_minutes, card.status) == (8, Status.USED)
    assert CardEvent.objects.get(card=card).new_status == Status.USED
    # billing twice changes nothing
    dialin.card_call_bill(card_call_id=call_id)
    card.refresh_from_db()
    assert card.balance_minutes == 8 and CardEvent.objects.count() == 1


def test_billing_is_capped_at_the_limit_and_empties_the_card(server, card):
    call_id = _open(server, card)
    now = timezone.now()
    leg(server, "u-1", bridged=now - dt.timedelta(seconds=700), ended=now)
    call = dialin.card_call_bill(card_call_id=call_id)
    card.refresh_from_db()
    assert (call.agent_talk_sec, call.agent_talk_min, call.end_reason) == (600, 10, "time limit")
    assert (card.balance_minutes, card.status) == (0, Status.EMPTY)
    assert list(CardEvent.objects.order_by("id").values_list("new_status", flat=True)) == ["USED", "EMPTY"]


def test_a_call_that_never_reached_an_agent_costs_nothing(server, card):
    call_id = _open(server, card)
    leg(server, "u-1", ended=timezone.now())
    call = dialin.card_call_bill(card_call_id=call_id)
    card.refresh_from_db()
    assert (call.agent_talk_min, call.balance_minutes_end, call.end_reason) == (
        0,
        10,
        "ended before an agent answered",
    )
    assert (card.balance_minutes, card.status) == (10, Status.ACTIVE)


def test_talking_then_orphans_found_on_start(server, card):
    call_id = _open(server, card)
    now = timezone.now()
    assert dialin.card_call_talking(card_call_id=call_id, agent_time=now, agent="1000@x")
    assert not dialin.card_call_talking(card_call_id=call_id, agent_time=now)
    assert dialin.card_calls_orphaned(server_id=server.pk) == []
    leg(server, "u-1", bridged=now, ended=now + dt.timedelta(seconds=30))
    assert dialin.card_calls_orphaned(server_id=server.pk) == [call_id]
    call = dialin.card_call_bill(card_call_id=call_id)
    assert (call.agent, call.agent_talk_sec, call.agent_talk_min) == ("1000@x", 30, 1)
    assert dialin.card_calls_orphaned(server_id=server.pk) == []


def test_the_check_is_two_reads(server, card, django_assert_num_queries):
    with django_assert_num_queries(2):  # the lockouts, the card
        verified = dialin.dial_in_verify(card_id=card.card_id, pin=PIN, phone_number="5550100")
    assert verified == dialin.Verified(card.pk)
