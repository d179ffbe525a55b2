"""End to end on pbxsim through the real pbx process: callers call in, agents are offered, bridged."""

import pytest

from queues.models import Agent, Member, Offer, QueueEvent
from telephony.models import CallRecord
from telephony.testing import wait_for
from tests.queues.conftest import (
    AGENT_ANSWERS_LATE,
    AGENT_BUSY,
    AGENT_NEVER_ANSWERS,
    AGENT_TALKS,
    CALLER_HANGS_UP,
    CALLER_PRESSES_1,
    CALLER_PRESSES_9,
    CALLER_WAITS,
)
from tests.queues.factories import AgentFactory, TierFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_caller_is_bridged_with_the_agent_and_the_call_is_counted(queue, pbx, call_in):
    agent = AgentFactory(company=queue.company, contact=AGENT_TALKS, wrap_up_time=0)
    TierFactory(queue=queue, agent=agent)

    session = call_in(queue, CALLER_WAITS)

    member = wait_for(lambda: Member.objects.filter(session_uuid=session).first(), what="the member")
    wait_for(
        lambda: Member.objects.filter(pk=member.pk, state=Member.State.ANSWERED).exists(), what="the bridge"
    )
    offer = Offer.objects.get(member=member)
    assert offer.agent == agent and offer.result == Offer.Result.ANSWERED
    wait_for(lambda: Offer.objects.filter(pk=offer.pk, ended_at__isnull=False).exists(), what="the end")
    agent.refresh_from_db()
    assert agent.calls_answered == 1 and agent.state == Agent.State.WAITING
    member.refresh_from_db()
    assert member.ended_at is not None and member.cancel_reason == ""
    actions = list(QueueEvent.objects.order_by("created_at", "id").values_list("action", flat=True))
    for action in (
        "member-queue-start",
        "agent-offering",
        "bridge-agent-start",
        "bridge-agent-end",
        "member-queue-end",
    ):
        assert action in actions
    leg = CallRecord.objects.get(uniqueid=offer.channel_id)
    assert leg.app == "queues" and leg.company_id == queue.company_id


def _member(session):
    return wait_for(lambda: Member.objects.filter(session_uuid=session).first(), what="the member")


def _until(query, what):
    return wait_for(lambda: query.exists(), what=what)


def test_a_busy_agent_is_passed_over_and_rested_for_its_busy_delay(queue, pbx, call_in):
    queue.strategy = "sequentially-by-agent-order"
    queue.save()
    busy = AgentFactory(company=queue.company, contact=AGENT_BUSY, busy_delay_time=300)
    talks = AgentFactory(company=queue.company, contact=AGENT_TALKS)
    TierFactory(queue=queue, agent=busy, position=1)
    TierFactory(queue=queue, agent=talks, position=2)

    member = _member(call_in(queue, CALLER_WAITS))

    _until(Member.objects.filter(pk=member.pk, state=Member.State.ANSWERED, agent=talks), "the second agent")
    failed = Offer.objects.get(member=member, agent=busy)
    assert failed.result == Offer.Result.BUSY
    busy.refresh_from_db()
    assert busy.state == Agent.State.WAITING and busy.ready_time > failed.offered_at
    assert QueueEvent.objects.filter(action="bridge-agent-fail", agent=busy).exists()


def test_an_agent_who_does_not_answer_goes_on_break_at_max_no_answer(queue, pbx, call_in):
    agent = AgentFactory(company=queue.company, contact=AGENT_NEVER_ANSWERS, max_no_answer=1)
    tier = TierFactory(queue=queue, agent=agent)

    member = _member(call_in(queue, CALLER_WAITS))

    _until(Offer.objects.filter(member=member, result=Offer.Result.NO_ANSWER), "the unanswered offer")
    agent.refresh_from_db()
    tier.refresh_from_db()
    assert agent.status == Agent.Status.ON_BREAK and agent.no_answer_count == 1
    assert tier.state == "No Answer"
    member.refresh_from_db()
    assert member.state == Member.State.WAITING  # still waiting for another agent
    assert QueueEvent.objects.filter(action="agent-status-change", agent=agent).exists()


def test_a_caller_who_hangs_up_while_waiting_has_abandoned(queue, pbx, call_in):
    member = _member(call_in(queue, CALLER_HANGS_UP))

    _until(Member.objects.filter(pk=member.pk, state=Member.State.ABANDONED), "the abandon")
    member.refresh_from_db()
    assert member.cancel_reason == Member.CancelReason.BREAK_OUT and member.ended_at
    end = QueueEvent.objects.get(action="member-queue-end")
    assert end.fields["CC-Cancel-Reason"] == "BREAK_OUT" and end.fields["CC-Cause"] == "Cancel"


def test_a_caller_who_hangs_up_while_the_agent_rings_costs_the_agent_nothing(queue, pbx, call_in):
    agent = AgentFactory(company=queue.company, contact=AGENT_NEVER_ANSWERS, no_answer_delay_time=300)
    queue.offer_timeout = 300
    queue.save()
    TierFactory(queue=queue, agent=agent)

    member = _member(call_in(queue, CALLER_HANGS_UP))

    _until(Offer.objects.filter(member=member, result=Offer.Result.CANCELED), "the cancelled offer")
    member.refresh_from_db()
    assert member.state == Member.State.ABANDONED
    agent.refresh_from_db()
    assert agent.state == Agent.State.WAITING and agent.no_answer_count == 0 and agent.ready_time is None
    offer = Offer.objects.get(member=member)
    wait_for(
        lambda: CallRecord.objects.get(uniqueid=offer.channel_id).state == "ended",
        what="the agent leg hung up",
    )


def test_max_wait_time_sends_the_caller_on_after_the_queue(queue, pbx, call_in):
    queue.max_wait_time = 2
    queue.save()

    member = _member(call_in(queue, CALLER_WAITS))

    _until(Member.objects.filter(pk=member.pk, cancel_reason=Member.CancelReason.TIMEOUT), "the timeout")
    wait_for(
        lambda: CallRecord.objects.get(uniqueid=member.session_uuid).state == "ended",
        what="the caller played the exit and hung up",
    )


def test_an_exit_key_leaves_the_queue(queue, pbx, call_in):
    queue.exit_keys = "9"
    queue.save()

    member = _member(call_in(queue, CALLER_PRESSES_9))

    _until(
        Member.objects.filter(pk=member.pk, cancel_reason=Member.CancelReason.EXIT_WITH_KEY), "the exit key"
    )


def test_the_call_back_key_keeps_the_place_and_the_agent_is_rung_first(queue, pbx, call_in):
    queue.callback_key = "1"
    queue.save()
    member = _member(call_in(queue, CALLER_PRESSES_1))
    _until(Member.objects.filter(pk=member.pk).exclude(callback_number=""), "the call back asked")
    wait_for(
        lambda: CallRecord.objects.get(uniqueid=member.session_uuid).state == "ended",
        what="the caller hung up",
    )
    member.refresh_from_db()
    assert member.state == Member.State.WAITING and member.callback_number == CALLER_PRESSES_1

    agent = AgentFactory(company=queue.company, contact=AGENT_TALKS)
    TierFactory(queue=queue, agent=agent)  # an agent comes: the dispatcher sees the new tier

    _until(
        Member.objects.filter(pk=member.pk, state=Member.State.ANSWERED, agent=agent), "the call back bridged"
    )
    offer = Offer.objects.get(member=member, result=Offer.Result.ANSWERED)
    back = wait_for(
        lambda: CallRecord.objects.filter(
            uniqueid=f"{offer.channel_id}-cb", started_at__isnull=False
        ).first(),
        what="the call back leg",
    )
    agent_leg = CallRecord.objects.get(uniqueid=offer.channel_id)
    assert agent_leg.answered_at <= back.started_at  # the agent answered first, then the caller was rung


def test_ring_all_rings_everyone_and_the_first_to_answer_takes_the_caller(queue, pbx, call_in):
    queue.strategy = "ring-all"
    queue.save()
    never = AgentFactory(company=queue.company, contact=AGENT_NEVER_ANSWERS, no_answer_delay_time=300)
    # Rung one after the other: the slow one answers late enough (40 s) that the fast one, rung
    # last, still answers first on a loaded machine.
    slow = AgentFactory(company=queue.company, contact=AGENT_ANSWERS_LATE)
    fast = AgentFactory(company=queue.company, contact=AGENT_TALKS)
    for agent in (never, slow, fast):
        TierFactory(queue=queue, agent=agent)

    member = _member(call_in(queue, CALLER_WAITS))

    _until(Member.objects.filter(pk=member.pk, state=Member.State.ANSWERED, agent=fast), "the fastest agent")
    wait_for(
        lambda: not Offer.objects.filter(member=member, result=Offer.Result.RINGING).exists(),
        what="the other offers cancelled",
    )
    assert set(Offer.objects.filter(member=member).values_list("result", flat=True)) == {
        "answered",
        "canceled",
    }
    never.refresh_from_db()
    assert never.no_answer_count == 0 and never.ready_time is None


def test_an_on_demand_agent_is_idle_after_a_call(queue, pbx, call_in):
    agent = AgentFactory(company=queue.company, contact=AGENT_TALKS, status=Agent.Status.AVAILABLE_ON_DEMAND)
    TierFactory(queue=queue, agent=agent)

    member = _member(call_in(queue, CALLER_WAITS))

    _until(
        Offer.objects.filter(member=member, result=Offer.Result.ANSWERED, ended_at__isnull=False), "the end"
    )
    agent.refresh_from_db()
    assert agent.state == Agent.State.IDLE and agent.calls_answered == 1


def test_no_agent_logged_in_ends_the_wait_with_no_agent_timeout(queue, pbx, call_in):
    queue.max_wait_time_with_no_agent = 2
    queue.max_wait_time_with_no_agent_time_reached = 1
    queue.save()
    TierFactory(queue=queue, agent__status=Agent.Status.LOGGED_OUT)

    member = _member(call_in(queue, CALLER_WAITS))

    _until(
        Member.objects.filter(pk=member.pk, cancel_reason=Member.CancelReason.NO_AGENT_TIMEOUT), "the timeout"
    )


def test_a_busy_agent_does_not_end_the_wait_for_no_agent(queue, pbx, call_in):
    queue.max_wait_time_with_no_agent = 1
    queue.max_wait_time_with_no_agent_time_reached = 1
    queue.save()
    TierFactory(queue=queue, agent__state=Agent.State.IN_A_QUEUE_CALL)  # logged in, but busy

    member = _member(call_in(queue, CALLER_WAITS))

    import time

    time.sleep(0.5)  # 10 s of the simulator's time
    member.refresh_from_db()
    assert member.state == Member.State.WAITING
