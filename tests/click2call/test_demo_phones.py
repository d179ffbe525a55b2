"""The demo's click2call operators are numbers the demo tariff rates, and they ring the demo phones."""

import pytest

from click2call.models import Campaign, CampaignOperator
from click2call.services.rating import operator_number_check
from tests.telephony.test_call_command import call, demo, demo_pbx  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_operators_are_rated_numbers_that_ring_the_demo_phones(demo_pbx):  # noqa: F811
    campaign = Campaign.objects.get(name="Demo banner")
    numbers = [link.operator.number for link in CampaignOperator.objects.filter(campaign=campaign)]
    assert [operator_number_check(campaign=campaign, number=number) for number in numbers] == numbers
    assert call("+33612345201").startswith("+33612345201: answered")
