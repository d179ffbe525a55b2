"""200 callers at once on pbxsim: every one served, no agent offered two callers at once, no caller
bridged twice."""

import collections

import pytest

from queues.models import Agent, Member, Offer
from telephony.testing import wait_for
from tests.queues.conftest import AGENT_TALKS_LONG, CALLER_WAITS_LONG
from tests.queues.factories import AgentFactory, TierFactory

pytestmark = pytest.mark.django_db(transaction=True)

CALLERS = 200


# Ring-all rings every free agent for each caller and cancels all but one: with 10 agents that is
# some 3,800 offers and cancellations for 200 callers, each a commit (minutes on CI's PostgreSQL).
@pytest.mark.long
@pytest.mark.parametrize(("strategy", "agents"), [("longest-idle-agent", 20), ("ring-all", 10)])
def test_two_hundred_callers_are_each_served_once_and_no_agent_twice_at_a_time(
    queue, pbx, call_in, strategy, agents
):
    queue.strategy = strategy
    queue.offer_timeout = 60
    queue.save()
    for _ in range(agents):
        TierFactory(
            queue=queue, agent=AgentFactory(company=queue.company, contact=AGENT_TALKS_LONG, wrap_up_time=0)
        )

    for _ in range(CALLERS):
        call_in(queue, CALLER_WAITS_LONG)

    wait_for(
        lambda: Member.objects.filter(queue=queue).count() == CALLERS, timeout=60, what="every caller joined"
    )
    wait_for(
        lambda: (
            Offer.objects.filter(queue=queue, result=Offer.Result.ANSWERED, ended_at__isnull=False).count()
            == CALLERS
        ),
        timeout=900,
        what="every call answered and over",
    )
    answered = collections.Counter(
        Offer.objects.filter(result=Offer.Result.ANSWERED).values_list("member_id", flat=True)
    )
    assert len(answered) == CALLERS and set(answered.values()) == {1}
    assert not Member.objects.exclude(state=Member.State.ANSWERED).exists()
    by_agent = collections.defaultdict(list)
    for offer in Offer.objects.order_by("offered_at", "id"):
        by_agent[offer.agent_id].append(offer)
    for offers in by_agent.values():
        for before, after in zip(offers, offers[1:], strict=False):
            assert before.ended_at is not None and before.ended_at <= after.offered_at
    wait_for(
        lambda: not Agent.objects.exclude(state=Agent.State.WAITING).exists(),
        what="every agent waiting again",
    )
