"""A queue call on pbxsim through the real pbx process is one call on the portal's home, however
many agents were rung for it."""

import pytest

from queues.models import Member, Offer
from telephony.models import CallRecord
from telephony.selectors import call_figures_for_company
from telephony.testing import wait_for
from tests.queues.conftest import AGENT_NEVER_ANSWERS, AGENT_TALKS, CALLER_WAITS
from tests.queues.factories import AgentFactory, TierFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_caller_whose_first_agent_did_not_answer_is_one_answered_call(queue, pbx, call_in):
    first = AgentFactory(company=queue.company, contact=AGENT_NEVER_ANSWERS)
    second = AgentFactory(company=queue.company, contact=AGENT_TALKS)
    TierFactory(queue=queue, agent=first, level=1)
    TierFactory(queue=queue, agent=second, level=2)

    session = call_in(queue, CALLER_WAITS)
    wait_for(lambda: Member.objects.filter(session_uuid=session, state="Answered").exists(), what="bridged")
    offers = list(Offer.objects.order_by("offered_at"))
    assert [(o.agent, o.result) for o in offers] == [(first, "no_answer"), (second, "answered")]
    wait_for(
        lambda: CallRecord.objects.get(uniqueid=offers[1].channel_id).state == "ended", what="the call's end"
    )

    # The caller is the company's call (as `manage.py call` makes it), not the test harness's.
    CallRecord.objects.filter(uniqueid=session).update(company=queue.company)
    legs = CallRecord.objects.filter(company=queue.company)
    assert legs.count() == 3  # the caller and both agents' legs
    caller = CallRecord.objects.get(uniqueid=session)
    assert {leg.linkedid for leg in legs} == {caller.linkedid}
    figures = call_figures_for_company(company=queue.company)
    assert (figures["calls_today"], figures["answered_rate_today"]) == (1, 100)
