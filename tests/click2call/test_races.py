"""A campaign's deletion is decided on the locked campaign: a visitor's request posted at the same
moment is never left without its campaign, nor makes the deletion fail."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.test import Client

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


def test_a_banner_post_racing_the_deletion_is_told_the_campaign_is_gone(monkeypatch):
    # The post's INSERT waits on the locked campaign, then fails on its foreign key once the campaign
    # is gone: not a repeat number (there is no open request to answer with), the campaign's key.
    campaign = CampaignFactory()
    post = Rival(
        monkeypatch,
        Campaign,
        "delete",
        lambda: Client().post(
            "/api/click2call/requests/",
            json.dumps({"number": "06 12 34 56 78", "consent": True}),
            content_type="application/json",
            headers={"X-Campaign-Key": campaign.public_key, "Origin": "https://shop.example.com"},
        ),
    )

    campaigns.campaign_delete(campaign=campaign)

    response = post.done().result
    assert post.error is None, repr(post.error)
    assert response.status_code == 403 and response.json()["code"] == "campaign_key_invalid"
    assert not Campaign.objects.exists() and not CallRequest.objects.exists()


def test_a_campaign_used_after_it_was_read_is_not_deleted():
    campaign = CampaignFactory()  # the portal read it unused ...
    CallRequestFactory(campaign=campaign, company=campaign.company)  # ... a visitor posts ...
    with pytest.raises(ValidationError, match="deactivate it instead"):
        campaigns.campaign_delete(campaign=campaign)
    assert CallRequest.objects.filter(campaign=campaign).exists()
