"""The pbx process restarts mid-call: state is rebuilt from the database and the PBX's live
channels; no agent is left Receiving or Reserved, no member Trying; bridged calls go on."""

import pytest

from queues.models import Agent, Member, Offer
from queues.pbx import Queues
from telephony.facade import PbxFacade
from telephony.models import CallRecord, PbxServer
from telephony.testing import pbx_process, wait_for
from tests.queues.conftest import AGENT_NEVER_ANSWERS, AGENT_STAYS, CALLER_HANGS_UP, CALLER_WAITS
from tests.queues.factories import AgentFactory, TierFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _running(server):
    process = pbx_process([server], apps=[Queues()])
    process.__enter__()
    wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
    return process


def _state(agent):
    return Agent.objects.get(pk=agent.pk).state


def test_a_ringing_offer_is_cancelled_and_made_again_after_a_restart(server, queue, call_in):
    queue.offer_timeout = 300
    queue.save()
    agent = AgentFactory(company=queue.company, contact=AGENT_NEVER_ANSWERS, reserve_agents=True)
    TierFactory(queue=queue, agent=agent)
    process = _running(server)
    session = call_in(queue, CALLER_WAITS)
    first = wait_for(lambda: Offer.objects.filter(member__session_uuid=session).first(), what="the offer")
    wait_for(
        lambda: CallRecord.objects.filter(uniqueid=first.channel_id, state="ringing").exists(), what="ringing"
    )
    wait_for(lambda: _state(agent) == Agent.State.RECEIVING, what="the agent receiving the offer")
    process.__exit__(None, None, None)  # the pbx process goes away while the agent rings
    assert _state(agent) == Agent.State.RECEIVING

    process = _running(server)
    try:
        wait_for(
            lambda: Offer.objects.filter(pk=first.pk, result=Offer.Result.CANCELED).exists(),
            what="the old offer",
        )
        wait_for(
            lambda: CallRecord.objects.get(uniqueid=first.channel_id).state == "ended", what="its leg hung up"
        )
        again = wait_for(
            lambda: Offer.objects.filter(member=first.member, result=Offer.Result.RINGING).first(),
            what="a new offer",
        )
        assert again.pk != first.pk
        assert Offer.objects.filter(agent=agent, result=Offer.Result.RINGING).count() == 1
        # Reserved until the new offer's Originate is marked sent (a step of its own): on a loaded
        # machine the process could otherwise be stopped in between.
        wait_for(lambda: _state(agent) == Agent.State.RECEIVING, what="the agent receiving the new offer")
        agent.refresh_from_db()
        assert agent.no_answer_count == 0  # the restart is not held against the agent
    finally:
        process.__exit__(None, None, None)
    agent.refresh_from_db()
    assert agent.state in (Agent.State.RECEIVING, Agent.State.WAITING)


def test_a_bridged_call_goes_on_through_a_restart_and_is_counted_when_it_ends(server, queue, call_in):
    agent = AgentFactory(company=queue.company, contact=AGENT_STAYS)
    TierFactory(queue=queue, agent=agent)
    process = _running(server)
    session = call_in(queue, CALLER_WAITS)
    member = wait_for(
        lambda: Member.objects.filter(session_uuid=session, state=Member.State.ANSWERED).first(),
        what="the bridge",
    )
    process.__exit__(None, None, None)

    process = _running(server)
    try:
        agent.refresh_from_db()
        assert agent.state == Agent.State.IN_A_QUEUE_CALL
        facade = PbxFacade()
        try:
            facade.hangup(server=server, channel=member.channel)
        finally:
            facade.close()
        wait_for(lambda: Offer.objects.filter(member=member, ended_at__isnull=False).exists(), what="the end")
    finally:
        process.__exit__(None, None, None)
    agent.refresh_from_db()
    assert agent.state == Agent.State.WAITING and agent.calls_answered == 1


def test_callers_gone_while_the_process_was_away_have_abandoned(server, queue, call_in):
    process = _running(server)
    session = call_in(queue, CALLER_HANGS_UP)
    member = wait_for(lambda: Member.objects.filter(session_uuid=session).first(), what="the member")
    process.__exit__(None, None, None)
    wait_for(lambda: CallRecord.objects.filter(uniqueid=session).exists(), what="the record")
    import time

    time.sleep(1.5)  # the caller hangs up (20 s of the simulator's time) while nobody listens

    process = _running(server)
    try:
        wait_for(
            lambda: Member.objects.filter(pk=member.pk, state=Member.State.ABANDONED).exists(),
            what="the abandon",
        )
    finally:
        process.__exit__(None, None, None)


def test_a_caller_who_hangs_up_during_the_call_frees_the_agent(server, queue, call_in):
    agent = AgentFactory(company=queue.company, contact=AGENT_STAYS, wrap_up_time=0)
    TierFactory(queue=queue, agent=agent)
    process = _running(server)
    try:
        session = call_in(queue, CALLER_HANGS_UP)
        member = wait_for(
            lambda: Member.objects.filter(session_uuid=session, state=Member.State.ANSWERED).first(),
            what="the bridge",
        )
        offer = Offer.objects.get(member=member, result=Offer.Result.ANSWERED)
        wait_for(lambda: Offer.objects.filter(pk=offer.pk, ended_at__isnull=False).exists(), what="the end")
        wait_for(
            lambda: CallRecord.objects.get(uniqueid=offer.channel_id).state == "ended", what="agent leg over"
        )
    finally:
        process.__exit__(None, None, None)
    agent.refresh_from_db()
    assert agent.state == Agent.State.WAITING and agent.calls_answered == 1
