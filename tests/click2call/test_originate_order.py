"""A first party that does not answer ends its attempt the same whichever Asterisk sends first:
the OriginateResponse or the Hangup of the originated leg (Asterisk 22 sent the response first in
7 of 7 runs of tests/pbxsim/apps, older traces show the Hangup first; pbxsim sends either)."""

import pytest

from click2call.models import CallRequest
from click2call.services.requests import call_request_create
from click2call.tasks import dial_attempt
from telephony.testing import running_contract_pbxsim, wait_for
from tests.click2call.conftest import C2C_PHONES, VISITOR_BUSY
from tests.telephony.conftest import MANAGER_USERS, SCALE

pytestmark = pytest.mark.django_db(transaction=True)

VISITOR_NEVER_ANSWERS = "+33612345003"  # rings the test phone 5551003


@pytest.fixture(params=["response-first", "hangup-first"])
def sim(request, tmp_path):
    """The click2call simulator (tests/click2call/conftest.py), in each order of a failed Originate."""
    with running_contract_pbxsim(
        tmp_path,
        manager_users=MANAGER_USERS,
        extra_dialplans=[C2C_PHONES],
        time_scale=SCALE,
        extra_args=["--originate-failure-order", request.param],
    ) as sim:
        yield sim


@pytest.mark.parametrize(
    ("number", "detail"),
    [(VISITOR_BUSY, "first party: busy"), (VISITOR_NEVER_ANSWERS, "first party: no_answer")],
)
def test_an_unanswered_first_party_ends_the_attempt_the_same_in_either_order(
    make_campaign, pbx, number, detail
):
    request, _ = call_request_create(campaign=make_campaign(), number=number, consent=True)
    dial_attempt(request.pk)
    wait_for(
        lambda: CallRequest.objects.filter(pk=request.pk).exclude(status="DIALING").exists(),
        timeout=20,
        what="the attempt's outcome",
    )
    attempt = request.attempts.get()
    assert (attempt.status, attempt.detail) == ("FAILED_USER", detail)
