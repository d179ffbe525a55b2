"""A campaign's deletion is decided on the locked campaign: a visitor's request posted at the same
moment is never left without its campaign, nor makes the deletion fail."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from click2call.models import CallRequest, Campaign
from click2call.services import campaigns
from tests.click2call.factories import CallRequestFactory, CampaignFactory
from tests.races import Rival

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_request_posted_while_its_campaign_is_deleted_is_refused_not_a_crash(monkeypatch):
    campaign = CampaignFactory()
    post = Rival(
        monkeypatch,
        Campaign,
        "delete",
        lambda: CallRequestFactory(campaign=campaign, company=campaign.company),
    )

    campaigns.campaign_delete(campaign=campaign)

    assert isinstance(post.done().error, IntegrityError)  # the banner's post finds no campaign
    assert not Campaign.objects.exists() and not CallRequest.objects.exists()


def test_a_campaign_used_after_it_was_read_is_not_deleted():
    campaign = CampaignFactory()  # the portal read it unused ...
    CallRequestFactory(campaign=campaign, company=campaign.company)  # ... a visitor posts ...
    with pytest.raises(ValidationError, match="deactivate it instead"):
        campaigns.campaign_delete(campaign=campaign)
    assert CallRequest.objects.filter(campaign=campaign).exists()
