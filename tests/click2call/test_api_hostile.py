"""Hostile input against the banner API: always a clean 4xx in the banner's error shape, never a 500."""

import pytest

from click2call.models import CallRequest
from tests import hostile
from tests.click2call.factories import CampaignFactory

URL = "/api/click2call/requests/"


@pytest.fixture
def headers(db):
    campaign = CampaignFactory()
    return {"X-Campaign-Key": campaign.public_key, "Origin": "https://shop.example.com"}


def assert_banner_error(response, code=None):
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"], body
    if code:
        assert body["code"] == code, body


@pytest.mark.parametrize("body", hostile.MALFORMED_JSON.values(), ids=hostile.MALFORMED_JSON)
def test_malformed_json_is_a_400(client, headers, body):
    response = hostile.assert_rejects_cleanly(client, "post", URL, body, status=400, headers=headers)
    assert_banner_error(response, "parse_error")


def test_deep_nesting_is_a_400(client, headers):
    response = hostile.assert_rejects_cleanly(
        client, "post", URL, hostile.DEEP_NESTING, status=400, headers=headers
    )
    assert_banner_error(response)


def test_an_oversize_body_is_a_413(client, headers):
    response = hostile.assert_rejects_cleanly(
        client, "post", URL, hostile.oversize_body(), status=413, headers=headers
    )
    assert_banner_error(response, "request_too_large")


def test_a_form_body_is_a_415(client, headers):
    response = hostile.assert_rejects_cleanly(
        client, "post", URL, b"number=0612345678", status=415, content_type="text/plain", headers=headers
    )
    assert_banner_error(response, "unsupported_media_type")


@pytest.mark.parametrize("field", ["number", "name", "note", "consent"])
@pytest.mark.parametrize("value", hostile.WRONG_TYPES.values(), ids=hostile.WRONG_TYPES)
def test_wrong_types_are_refused_or_taken(client, headers, field, value):
    body = {"number": "06 12 34 56 78", "consent": True, field: value}
    response = hostile.assert_answers_cleanly(client, "post", URL, body, headers=headers)
    if response.status_code >= 400:
        assert_banner_error(response)


@pytest.mark.parametrize("value", hostile.HOSTILE_STRINGS.values(), ids=hostile.HOSTILE_STRINGS)
def test_hostile_numbers_are_refused(client, headers, value):
    response = hostile.assert_rejects_cleanly(
        client, "post", URL, {"number": value, "consent": True}, status=400, headers=headers
    )
    assert_banner_error(response)
    assert not CallRequest.objects.exists()


@pytest.mark.parametrize("field", ["name", "note"])
@pytest.mark.parametrize("value", hostile.HOSTILE_STRINGS.values(), ids=hostile.HOSTILE_STRINGS)
def test_hostile_names_and_notes_are_stored_as_sent_or_refused(client, headers, field, value):
    body = {"number": "06 12 34 56 78", "consent": True, field: value}
    response = hostile.assert_answers_cleanly(client, "post", URL, body, headers=headers)
    if response.status_code == 201:
        assert getattr(CallRequest.objects.get(), field) == value.strip()
    else:
        assert_banner_error(response, "invalid_field")


@pytest.mark.parametrize("key", ["c2c_pk_\x00", "ключ", "c2c_pk_" + "a" * 10_000, "' OR 1=1 --"])
def test_hostile_keys_are_403(client, db, key):
    response = hostile.assert_rejects_cleanly(
        client,
        "post",
        URL,
        {"number": "06 12 34 56 78", "consent": True},
        status=403,
        headers={"X-Campaign-Key": key},
    )
    assert_banner_error(response, "campaign_key_invalid")


@pytest.mark.parametrize("token", ["%00", "%F0%9F%93%9E", "..%2F..%2Fadmin", "a" * 5000, "%E2%80%AE"])
def test_hostile_status_tokens_are_404(client, db, token):
    # A token with a slash matches no URL: the platform's JSON 404, without a code.
    hostile.assert_rejects_cleanly(client, "get", f"/api/click2call/status/{token}/", status=404)
