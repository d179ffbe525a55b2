"""End to end on pbxsim through the real pbx process: callers call in, agents are offered, bridged."""

import pytest

from queues.models import Agent, Member, Offer, QueueEvent
from telephony.models import CallRecord
from telephony.testing import wait_for
from tests.queues.conftest import AGENT_TALKS, CALLER_WAITS
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
