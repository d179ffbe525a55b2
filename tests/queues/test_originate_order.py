"""An agent's unanswered offer ends the same whichever Asterisk sends first: the OriginateResponse
or the Hangup of the agent's leg (Asterisk 22 sent the response first in 7 of 7 runs of
tests/pbxsim/apps, older traces show the Hangup first; pbxsim sends either on request)."""

import pytest

from queues.models import Offer, QueueEvent
from telephony.testing import running_contract_pbxsim, wait_for
from tests.queues.conftest import AGENT_BUSY, AGENT_DECLINES, AGENT_NEVER_ANSWERS, CALLER_WAITS, QUEUE_PHONES
from tests.queues.factories import AgentFactory, TierFactory
from tests.telephony.conftest import MANAGER_USERS, SCALE

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["response-first", "hangup-first"])
def sim(request, tmp_path):
    """The queues' simulator (tests/queues/conftest.py), in each order of a failed Originate."""
    with running_contract_pbxsim(
        tmp_path,
        manager_users=MANAGER_USERS,
        extra_dialplans=[QUEUE_PHONES],
        time_scale=SCALE,
        extra_args=["--originate-failure-order", request.param],
    ) as sim:
        yield sim


@pytest.mark.parametrize(
    ("contact", "result", "cause"),
    [(AGENT_NEVER_ANSWERS, Offer.Result.NO_ANSWER, "no_answer"), (AGENT_BUSY, Offer.Result.BUSY, "busy")],
)
def test_an_unanswered_offer_ends_the_same_in_either_order(queue, pbx, call_in, contact, result, cause):
    agent = AgentFactory(
        company=queue.company, contact=contact, no_answer_delay_time=300, busy_delay_time=300
    )
    TierFactory(queue=queue, agent=agent)

    call_in(queue, CALLER_WAITS)

    offer = wait_for(lambda: Offer.objects.filter(ended_at__isnull=False).first(), what="the offer's end")
    assert (offer.result, offer.hangup_cause) == (result, cause)
    fail = wait_for(
        lambda: QueueEvent.objects.filter(action="bridge-agent-fail", agent=agent).first(), what="the event"
    )
    assert fail.fields["CC-Hangup-Cause"] == cause


def test_an_agent_who_declines_is_rejected_in_either_order(queue, pbx, call_in):
    """The Hangup's cause (21) decides, also when the OriginateResponse came first without it: the
    agent waits its reject delay, not its busy delay."""
    agent = AgentFactory(
        company=queue.company, contact=AGENT_DECLINES, reject_delay_time=300, busy_delay_time=300
    )
    TierFactory(queue=queue, agent=agent)

    call_in(queue, CALLER_WAITS)

    offer = wait_for(lambda: Offer.objects.filter(ended_at__isnull=False).first(), what="the offer's end")
    assert offer.result == Offer.Result.REJECTED
