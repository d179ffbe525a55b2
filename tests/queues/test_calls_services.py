"""The dispatcher's writes, one by one on the database: each a conditional claim the database has the
last word on."""

import datetime as dt

import pytest
from django.utils import timezone

from queues.models import Agent, Member, Offer, QueueEvent, Tier
from queues.services import calls
from telephony.models import CallRecord
from tests.queues.factories import MemberFactory, QueueFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tier():
    return TierFactory()


def _member(tier, **fields):
    return MemberFactory(queue=tier.queue, **fields)


def test_an_agent_is_claimed_for_one_offer_at_a_time(tier):
    first, second = _member(tier), _member(tier)

    offer = calls.offer_claim(member_id=first.pk, agent_id=tier.agent_id)

    assert offer is not None and calls.offer_claim(member_id=second.pk, agent_id=tier.agent_id) is None
    tier.agent.refresh_from_db()
    tier.refresh_from_db()
    assert tier.agent.state == Agent.State.RECEIVING and tier.state == Tier.State.OFFERING
    assert Member.objects.get(pk=first.pk).state == Member.State.TRYING
    assert QueueEvent.objects.filter(action="agent-offering").count() == 1


@pytest.mark.parametrize("status", [Agent.Status.LOGGED_OUT, Agent.Status.ON_BREAK])
def test_an_agent_not_available_is_not_claimed(tier, status):
    Agent.objects.filter(pk=tier.agent_id).update(status=status)
    assert calls.offer_claim(member_id=_member(tier).pk, agent_id=tier.agent_id) is None


def test_a_member_is_answered_by_one_offer_only(tier):
    member = _member(tier)
    other = TierFactory(queue=tier.queue)
    one = calls.offer_claim(member_id=member.pk, agent_id=tier.agent_id)
    two = calls.offer_claim(member_id=member.pk, agent_id=other.agent_id)  # ring-all

    answered = calls.offer_answered(offer_id=one.pk)

    assert answered.cancel == [two.channel_id]
    assert calls.offer_answered(offer_id=two.pk) is None
    assert Offer.objects.filter(member=member, result=Offer.Result.ANSWERED).count() == 1


def test_an_agent_who_answered_but_could_not_be_bridged_puts_the_caller_back(tier):
    member = _member(tier)
    offer = calls.offer_claim(member_id=member.pk, agent_id=tier.agent_id)
    calls.offer_answered(offer_id=offer.pk)

    assert calls.offer_unbridged(offer_id=offer.pk, caller_gone=False)

    member.refresh_from_db()
    tier.agent.refresh_from_db()
    assert member.state == Member.State.WAITING and member.agent is None
    assert tier.agent.state == Agent.State.WAITING and tier.agent.calls_answered == 0
    assert tier.agent.no_answer_count == 1
    assert Offer.objects.get(pk=offer.pk).result == Offer.Result.NO_ANSWER


def test_a_caller_gone_before_the_bridge_has_abandoned_and_the_agent_is_free(tier):
    member = _member(tier)
    offer = calls.offer_claim(member_id=member.pk, agent_id=tier.agent_id)
    calls.offer_answered(offer_id=offer.pk)

    calls.offer_unbridged(offer_id=offer.pk, caller_gone=True)

    member.refresh_from_db()
    tier.agent.refresh_from_db()
    assert member.state == Member.State.ABANDONED and member.cancel_reason == "BREAK_OUT"
    assert tier.agent.state == Agent.State.WAITING and tier.agent.no_answer_count == 0


def test_the_call_is_counted_when_the_bridge_ends(tier):
    member = _member(tier)
    offer = calls.offer_claim(member_id=member.pk, agent_id=tier.agent_id)
    calls.offer_answered(offer_id=offer.pk)
    Offer.objects.filter(pk=offer.pk).update(answered_at=timezone.now() - dt.timedelta(seconds=42))

    calls.bridge_ended(offer_id=offer.pk, cause="Normal Clearing")
    calls.bridge_ended(offer_id=offer.pk, cause="again")  # once

    tier.agent.refresh_from_db()
    assert tier.agent.calls_answered == 1 and 41 <= tier.agent.talk_time <= 43
    assert Offer.objects.get(pk=offer.pk).talk_time == tier.agent.talk_time
    assert QueueEvent.objects.filter(action="bridge-agent-end").count() == 1


def test_a_busy_agent_rests_and_a_no_answer_counts(tier):
    Agent.objects.filter(pk=tier.agent_id).update(
        busy_delay_time=30, no_answer_delay_time=90, max_no_answer=2
    )
    offer = calls.offer_claim(member_id=_member(tier).pk, agent_id=tier.agent_id)
    busy = calls.offer_failed(offer_id=offer.pk, result=Offer.Result.BUSY)
    assert busy.tier_state == Tier.State.READY
    assert 29 <= (busy.agent_ready_time - timezone.now()).total_seconds() <= 30

    Agent.objects.filter(pk=tier.agent_id).update(ready_time=None)
    for _ in range(2):
        offer = calls.offer_claim(member_id=_member(tier).pk, agent_id=tier.agent_id)
        ended = calls.offer_failed(offer_id=offer.pk, result=Offer.Result.NO_ANSWER)
        Agent.objects.filter(pk=tier.agent_id).update(ready_time=None)

    assert ended.agent_status == Agent.Status.ON_BREAK and ended.tier_state == Tier.State.NO_ANSWER


def test_a_caller_joins_by_the_queue_full_name_and_an_unloaded_queue_refuses():
    queue = QueueFactory()
    joined = calls.member_join(
        server_id=queue.server_id,
        queue_name=queue.full_name,
        uniqueid="u-1",
        channel="PJSIP/x-1",
        cid_number="555",
    )
    assert joined.member.queue == queue and joined.member.state == Member.State.WAITING
    queue.loaded = False
    queue.save()
    with pytest.raises(calls.JoinRefused):
        calls.member_join(server_id=queue.server_id, queue_name=queue.full_name, uniqueid="u-2", channel="c")
    with pytest.raises(calls.JoinRefused):
        calls.member_join(server_id=queue.server_id, queue_name="nosuch@queue", uniqueid="u-3", channel="c")


def test_the_rebuild_leaves_nobody_receiving_or_trying(tier):
    member = _member(tier, session_uuid="live-caller")
    gone = _member(tier, session_uuid="gone-caller")
    offer = calls.offer_claim(member_id=member.pk, agent_id=tier.agent_id)

    hang_up = calls.board_rebuild(
        server_id=tier.queue.server_id, live_uniqueids={"live-caller", offer.channel_id}
    )

    assert hang_up == [offer.channel_id]
    tier.agent.refresh_from_db()
    assert tier.agent.state == Agent.State.WAITING and tier.agent.no_answer_count == 0
    assert Member.objects.get(pk=member.pk).state == Member.State.WAITING
    assert Member.objects.get(pk=gone.pk).state == Member.State.ABANDONED
    assert Offer.objects.get(pk=offer.pk).result == Offer.Result.CANCELED
    # its leg was claimed with the offer; never sent, it ends with it
    assert CallRecord.objects.get(uniqueid=offer.channel_id).state == CallRecord.State.ENDED


def test_an_offer_is_claimed_with_its_agent_leg_in_one_transaction(tier):
    offer = calls.offer_claim(member_id=_member(tier).pk, agent_id=tier.agent_id)

    record = CallRecord.objects.get(uniqueid=offer.channel_id)
    assert (record.state, record.app, record.app_ref) == ("claimed", "queues", offer.channel_id)
    assert record.company_id == tier.queue.company_id and record.callee == tier.agent.contact


def test_a_deleted_agent_leaves_its_offers_and_events_in_the_history(tier):
    offer = calls.offer_claim(member_id=_member(tier).pk, agent_id=tier.agent_id)
    calls.offer_failed(offer_id=offer.pk, result=Offer.Result.NO_ANSWER)

    tier.agent.delete()

    offer.refresh_from_db()
    assert offer.agent is None and offer.result == Offer.Result.NO_ANSWER
    assert QueueEvent.objects.filter(action="agent-offering", agent=None).exists()
