"""Edges a review found: a supervisor freeing a ringing agent by hand, call backs with ring-all,
an On Demand agent ready again, a resumed caller's deadlines, a standby agent whose channel died."""

import time

import pytest
from django.db import transaction
from django.utils import timezone

from queues.models import Agent, Member, Offer
from queues.services import calls
from queues.services.agents import agent_status_set
from telephony.facade import PbxFacade
from telephony.models import CallRecord
from telephony.testing import wait_for
from tests.queues.conftest import (
    AGENT_NEVER_ANSWERS,
    AGENT_STAYS,
    CALLER_HANGS_UP,
    CALLER_PRESSES_1,
    CALLER_WAITS,
)
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory, TierFactory


@pytest.mark.django_db(transaction=True)
def test_an_agent_freed_by_hand_while_it_rings_does_not_make_the_dispatcher_spin(
    queue, pbx, call_in, monkeypatch
):
    claims = []
    real = calls.offer_claim
    monkeypatch.setattr(calls, "offer_claim", lambda **kw: claims.append(kw) or real(**kw))
    queue.offer_timeout = 300
    queue.save()
    agent = AgentFactory(company=queue.company, contact=AGENT_NEVER_ANSWERS)
    TierFactory(queue=queue, agent=agent)
    other_queue = QueueFactory(server=queue.server, company=queue.company, offer_timeout=300)
    TierFactory(queue=other_queue, agent=agent)
    first = call_in(queue, CALLER_WAITS)
    wait_for(
        lambda: Offer.objects.filter(member__session_uuid=first, result="ringing").exists(), what="offer 1"
    )

    # No person can set the state any more; a row written behind the services' back still must not
    # make the dispatcher spin.
    Agent.objects.filter(pk=agent.pk).update(state=Agent.State.WAITING, changed_at=timezone.now())
    time.sleep(1.5)  # the dispatcher's refresh sees it
    second = call_in(other_queue, CALLER_WAITS)
    wait_for(lambda: Member.objects.filter(session_uuid=second).exists(), what="the second caller")
    time.sleep(1)

    assert len(claims) < 10  # a refused claim corrects the board; it is not tried again and again
    member = Member.objects.get(session_uuid=first)
    facade = PbxFacade()
    try:  # and the lane still serves the callers
        facade.hangup(server=queue.server, channel=member.channel)
    finally:
        facade.close()
    wait_for(lambda: Member.objects.filter(pk=member.pk, state="Abandoned").exists(), what="caller 1 left")


@pytest.mark.django_db(transaction=True)
def test_with_ring_all_a_caller_asking_for_a_call_back_is_rung_once(queue, pbx, call_in):
    queue.strategy = "ring-all"
    queue.callback_key = "1"
    queue.save()
    session = call_in(queue, CALLER_PRESSES_1)
    member = wait_for(lambda: Member.objects.filter(session_uuid=session).first(), what="the member")
    wait_for(lambda: Member.objects.filter(pk=member.pk).exclude(callback_number="").exists(), what="asked")
    wait_for(lambda: CallRecord.objects.get(uniqueid=session).state == "ended", what="the caller hung up")

    with transaction.atomic():
        for _ in range(2):
            TierFactory(queue=queue, agent=AgentFactory(company=queue.company, contact=AGENT_STAYS))

    wait_for(lambda: Member.objects.filter(pk=member.pk, state="Answered").exists(), what="answered")
    time.sleep(0.5)
    assert CallRecord.objects.filter(uniqueid__endswith="-cb").count() == 1
    assert Offer.objects.filter(member=member, result=Offer.Result.ANSWERED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_resumed_caller_waits_its_full_max_wait_time_again(queue, pbx, call_in):
    queue.abandoned_resume_allowed = True
    queue.discard_abandoned_after = 600
    queue.max_wait_time = 30  # 1.5 s at the simulator's pace; the first call waited 20 s of it
    queue.save()
    first = call_in(queue, CALLER_HANGS_UP)
    member = wait_for(lambda: Member.objects.filter(session_uuid=first).first(), what="the member")
    wait_for(lambda: Member.objects.filter(pk=member.pk, state=Member.State.ABANDONED).exists(), what="gone")

    resumed = call_in(queue, CALLER_HANGS_UP)
    wait_for(lambda: Member.objects.filter(pk=member.pk, session_uuid=resumed).exists(), what="resumed")
    time.sleep(0.5)  # 10 s: past the old wait plus this one's start, within its own 30 s
    member.refresh_from_db()
    assert member.state == Member.State.WAITING and member.cancel_reason == ""


@pytest.mark.django_db
def test_an_on_demand_agent_idle_after_a_call_is_ready_again_when_it_says_so():
    agent = AgentFactory(status=Agent.Status.AVAILABLE_ON_DEMAND, state=Agent.State.IDLE)
    agent_status_set(agent_id=agent.pk, status=Agent.Status.AVAILABLE_ON_DEMAND)
    agent.refresh_from_db()
    assert agent.state == Agent.State.WAITING and agent.status == Agent.Status.AVAILABLE_ON_DEMAND


@pytest.mark.django_db
def test_the_rebuild_forgets_a_standby_channel_that_hung_up_and_frees_agents_left_in_a_call():
    tier = TierFactory(agent__type=Agent.Type.UUID_STANDBY, agent__contact="")
    Agent.objects.filter(pk=tier.agent_id).update(standby_channel="Local/agent@x-1;1")
    stuck = TierFactory(queue=tier.queue, agent__state=Agent.State.IN_A_QUEUE_CALL)

    calls.board_rebuild(server_id=tier.queue.server_id, live_uniqueids=set(), live_channels={"PJSIP/other"})

    assert Agent.objects.get(pk=tier.agent_id).standby_channel == ""
    assert Agent.objects.get(pk=stuck.agent_id).state == Agent.State.WAITING


@pytest.mark.django_db
def test_a_standby_agent_whose_channel_is_gone_at_the_bridge_rests_and_waits_no_more():
    tier = TierFactory(agent__type=Agent.Type.UUID_STANDBY, agent__contact="", agent__no_answer_delay_time=60)
    Agent.objects.filter(pk=tier.agent_id).update(standby_channel="Local/agent@x-1;1", no_answer_count=0)
    member = MemberFactory(queue=tier.queue)
    offer = calls.offer_claim(member_id=member.pk, agent_id=tier.agent_id)
    calls.offer_answered(offer_id=offer.pk)

    calls.offer_unbridged(offer_id=offer.pk, caller_gone=False)

    agent = Agent.objects.get(pk=tier.agent_id)
    assert agent.standby_channel == "" and agent.no_answer_count == 1 and agent.ready_time is not None


@pytest.mark.django_db
def test_a_queue_with_callers_waiting_cannot_be_deleted():
    from queues.services.config import ConfigRefused, queue_del

    queue = QueueFactory()
    MemberFactory(queue=queue)
    with pytest.raises(ConfigRefused):
        queue_del(queue=queue)
    Member.objects.update(state=Member.State.ABANDONED)
    queue_del(queue=queue)
