"""The widget script and the demo page (the browser walk is in test_widget_browser.py)."""

import json
import re

import pytest

from tests.click2call.factories import CampaignFactory
from tests.factories import CompanyFactory


@pytest.fixture
def campaign(db):
    return CampaignFactory()


def test_the_widget_is_a_script_with_its_key_and_the_api_baked_in(client, campaign):
    response = client.get(f"/c2c/{campaign.public_key}/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["X-Content-Type-Options"] == "nosniff"
    config = json.loads(re.search(r"var CONFIG = (\{.*?\});", response.content.decode()).group(1))
    assert config == {"api": "http://testserver/api/click2call/requests/", "key": campaign.public_key}


def test_the_widget_builds_no_markup_from_data_and_loads_nothing_else(client, campaign):
    script = client.get(f"/c2c/{campaign.public_key}/widget.js").content.decode()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    assert "attachShadow" in script
    assert not re.search(r"https?://", script.replace("http://testserver/api/click2call/requests/", ""))


def test_an_inactive_or_unknown_campaign_has_no_widget(client, campaign):
    campaign.active = False
    campaign.save()
    for key in (campaign.public_key, "c2c_pk_nope"):
        response = client.get(f"/c2c/{key}/widget.js")
        assert response.status_code == 404
        assert response["Content-Type"] == "text/javascript; charset=utf-8"


def test_the_demo_page_embeds_the_demo_campaign_widget(client, db, settings):
    settings.DEBUG = True
    demo = CampaignFactory(company=CompanyFactory(slug="demo"))
    response = client.get("/c2c/demo/")
    assert response.status_code == 200
    assert f'<script src="/c2c/{demo.public_key}/widget.js"></script>' in response.content.decode()


def test_no_demo_page_without_debug_or_demo_campaign(client, db, settings):
    settings.DEBUG = True
    assert client.get("/c2c/demo/").status_code == 404
    CampaignFactory(company=CompanyFactory(slug="demo"))
    settings.DEBUG = False
    assert client.get("/c2c/demo/").status_code == 404
