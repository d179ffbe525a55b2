"""`queue unload` on pbxsim through the real pbx process: no new offers, callers not being offered are
sent on, an offer made goes on to its bridge."""

import pytest

from queues.models import Member, Offer
from queues.services import config
from telephony.testing import wait_for
from tests.queues.conftest import AGENT_ANSWERS_LATE, CALLER_WAITS
from tests.queues.factories import AgentFactory, TierFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_unloading_a_queue_lets_the_offered_caller_be_bridged_and_sends_the_others_on(queue, pbx, call_in):
    queue.offer_timeout = 120
    queue.save()
    agent = AgentFactory(company=queue.company, contact=AGENT_ANSWERS_LATE)
    TierFactory(queue=queue, agent=agent)
    offered = call_in(queue, CALLER_WAITS)
    offer = wait_for(
        lambda: Offer.objects.filter(member__session_uuid=offered, result="ringing").first(), what="the offer"
    )
    waiting = call_in(queue, CALLER_WAITS)
    wait_for(lambda: Member.objects.filter(session_uuid=waiting).exists(), what="the second caller")

    config.queue_unload(queue=queue)

    # The dispatcher took the unload up: the caller nobody was offered is sent on ...
    wait_for(
        lambda: Member.objects.filter(session_uuid=waiting, cancel_reason="TIMEOUT").exists(),
        what="the waiting caller sent on",
    )
    # ... while the one whose agent rings is bridged when the agent answers.
    wait_for(
        lambda: Offer.objects.filter(pk=offer.pk).exclude(result="ringing").exists(), what="the offer's end"
    )
    offer.refresh_from_db()
    member = Member.objects.get(session_uuid=offered)
    assert (offer.result, member.state, member.cancel_reason) == ("answered", "Answered", "")
    assert not Offer.objects.exclude(pk=offer.pk).exists()  # and no new offer was made
