"""The banner API: POST /api/click2call/requests/ and the status URL it answers."""

import json
from types import SimpleNamespace

import pytest
import redis
from django.test import override_settings
from django.utils import timezone

from click2call import selectors
from click2call.models import CallAttempt, CallRequest, Campaign
from click2call.services.campaigns import (
    campaign_deactivate,
    campaign_public_key_rotate,
    campaign_secret_key_rotate,
)
from telephony.testing import running_redis
from tests.click2call.factories import (
    FRENCH_MOBILE,
    BlockedPrefixFactory,
    CallAttemptFactory,
    CallRequestFactory,
    CampaignFactory,
)
from tests.telephony.factories import CallRecordFactory

URL = "/api/click2call/requests/"
SHOP = "https://shop.example.com"
VISITOR = {"number": "06 12 34 56 78", "name": "Ana", "note": "about order 42", "consent": True}


@pytest.fixture
def campaign(db):
    return CampaignFactory()


def post(client, campaign, body=VISITOR, *, origin=SHOP, key=None, address="203.0.113.7"):
    headers = {"X-Campaign-Key": campaign.public_key if key is None else key}
    if origin:
        headers["Origin"] = origin
    return client.post(
        URL, json.dumps(body), content_type="application/json", headers=headers, REMOTE_ADDR=address
    )


def assert_refused(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body


# -- the happy path -------------------------------------------------------------


def test_a_visitor_on_the_campaign_site_gets_a_request_and_its_status_url(client, campaign):
    response = post(client, campaign)
    assert response.status_code == 201
    body = response.json()
    request = CallRequest.objects.get()
    assert body == {
        "id": request.pk,
        "status": "PENDING",
        "status_url": f"http://testserver/api/click2call/status/{request.status_token}/",
    }
    assert (request.number, request.name, request.note, request.consent) == (
        FRENCH_MOBILE,
        "Ana",
        "about order 42",
        True,
    )
    assert (request.origin, request.client_address, request.rate_prefix) == (SHOP, "203.0.113.7", "336")
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in response["Vary"]


def test_the_same_number_again_is_the_same_request(client, campaign):
    first = post(client, campaign).json()
    again = post(client, campaign, {"number": "+33 6 12 34 56 78", "consent": True})
    assert again.status_code == 200
    assert again.json() == first
    assert CallRequest.objects.count() == 1


def test_a_finished_request_does_not_stop_a_new_one(client, campaign):
    CallRequestFactory(campaign=campaign, status=CallRequest.Status.COMPLETED)
    assert post(client, campaign).status_code == 201
    assert CallRequest.objects.count() == 2


def test_the_post_takes_a_fixed_number_of_queries(client, campaign, django_assert_num_queries):
    # Campaign; blocked prefixes and rate in one; savepoint, insert, release (no open-request lookup).
    with django_assert_num_queries(5):
        assert post(client, campaign).status_code == 201
    # The key's campaign is kept for C2C_CAMPAIGN_CACHE_SECONDS: the next visitor's post skips it.
    with django_assert_num_queries(4):
        assert post(client, campaign, {**VISITOR, "number": "06 12 34 56 79"}).status_code == 201


# -- refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"number": "12", "consent": True}, 400, "invalid_number"),
        ({"number": "call me maybe", "consent": True}, 400, "invalid_number"),
        ({"number": "06 12 34 56 78"}, 400, "consent_required"),
        ({"number": "06 12 34 56 78", "consent": False}, 400, "consent_required"),
        ({"number": "+44 7911 123456", "consent": True}, 422, "unsupported_destination"),
    ],
)
def test_refusals_have_a_stable_code(client, campaign, body, status, code):
    assert_refused(post(client, campaign, body), status, code)
    assert not CallRequest.objects.exists()


def test_a_blocked_prefix_is_refused(client, campaign):
    BlockedPrefixFactory(company=campaign.company, prefix="336")
    assert_refused(post(client, campaign), 422, "blocked_prefix")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"consent": True}, "number"),
        ({"number": ["06 12 34 56 78"], "consent": True}, "number"),
        ({"number": "06 12 34 56 78", "consent": "perhaps"}, "consent"),
        ({"number": "06 12 34 56 78", "consent": True, "name": "x" * 101}, "name"),
        ({"number": "06 12 34 56 78", "consent": True, "note": "x" * 501}, "note"),
    ],
)
def test_a_malformed_body_names_its_fields(client, campaign, body, field):
    refused = assert_refused(post(client, campaign, body), 400, "invalid_field")
    assert list(refused["fields"]) == [field]


def test_a_body_that_is_no_object_is_invalid_field(client, campaign):
    refused = assert_refused(post(client, campaign, ["06 12 34 56 78"]), 400, "invalid_field")
    assert "non_field_errors" in refused["fields"]


def test_errors_reach_the_widget_on_an_allowed_origin(client, campaign):
    response = post(client, campaign, {"number": "12", "consent": True})
    assert response["Access-Control-Allow-Origin"] == SHOP


# -- keys and origins -----------------------------------------------------------


def test_the_public_key_from_another_site_is_refused(client, campaign):
    response = post(client, campaign, origin="https://evil.example.net")
    assert_refused(response, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response
    assert not CallRequest.objects.exists()


def test_the_public_key_without_an_origin_is_refused(client, campaign):
    assert_refused(post(client, campaign, origin=None), 403, "origin_not_allowed")


def test_an_origin_listed_with_a_slash_or_capitals_matches(client, campaign):
    assert post(client, campaign, origin="https://WWW.example.com").status_code == 201


def test_the_secret_key_works_from_anywhere(client, campaign):
    response = post(client, campaign, key=campaign.secret_key, origin=None)
    assert response.status_code == 201
    assert CallRequest.objects.get().campaign == campaign
    assert "Access-Control-Allow-Origin" not in response


def test_the_secret_key_from_a_browser_site_gets_no_cors(client, campaign):
    response = post(client, campaign, key=campaign.secret_key, origin="https://evil.example.net")
    assert response.status_code == 201
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize("key", ["", "c2c_pk_nope", "not a key!", "x" * 500])
def test_an_unknown_or_malformed_key_is_refused(client, campaign, key):
    assert_refused(post(client, campaign, key=key), 403, "campaign_key_invalid")


def test_no_key_header_is_refused(client, campaign):
    response = client.post(
        URL, json.dumps(VISITOR), content_type="application/json", headers={"Origin": SHOP}
    )
    assert_refused(response, 403, "campaign_key_invalid")


def test_a_campaign_without_a_secret_matches_no_empty_hash(client, db):
    campaign = CampaignFactory()
    campaign.secret_key_hash = ""
    campaign.save()
    assert_refused(post(client, campaign, key="c2c_sk_anything", origin=None), 403, "campaign_key_invalid")


def test_an_inactive_campaign_is_refused_with_either_key(client, campaign):
    campaign.active = False
    campaign.save()
    assert_refused(post(client, campaign), 403, "campaign_key_invalid")
    assert_refused(post(client, campaign, key=campaign.secret_key), 403, "campaign_key_invalid")


def test_an_inactive_company_is_refused(client, campaign):
    campaign.company.active = False
    campaign.company.save()
    assert_refused(post(client, campaign), 403, "campaign_key_invalid")


def test_keys_rotated_or_a_campaign_deactivated_here_stop_at_once(client, campaign):
    assert post(client, campaign).status_code == 201  # the campaign is now kept by its keys
    old_public, old_secret = campaign.public_key, campaign.secret_key
    campaign_public_key_rotate(campaign=campaign)
    campaign_secret_key_rotate(campaign=campaign)
    assert_refused(post(client, campaign, key=old_public), 403, "campaign_key_invalid")
    assert_refused(post(client, campaign, key=old_secret, origin=None), 403, "campaign_key_invalid")
    other_number = {**VISITOR, "number": "06 12 34 56 79"}
    assert post(client, campaign, other_number).status_code == 201
    campaign_deactivate(campaign=campaign)
    assert_refused(post(client, campaign, other_number), 403, "campaign_key_invalid")


def test_a_key_rotated_by_another_process_stops_within_the_cache_time(
    client, campaign, settings, monkeypatch
):
    clock = [1000.0]
    monkeypatch.setattr(selectors, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    settings.C2C_CAMPAIGN_CACHE_SECONDS = 5
    assert post(client, campaign).status_code == 201
    # Another web process rotates the key: this one's post_save receiver never hears of it.
    Campaign.objects.filter(pk=campaign.pk).update(public_key="c2c_pk_rotated-elsewhere")
    clock[0] += 4.9
    assert post(client, campaign, {**VISITOR, "number": "06 12 34 56 79"}).status_code == 201
    clock[0] += 0.2
    later = post(client, campaign, {**VISITOR, "number": "06 12 34 56 77"})
    assert_refused(later, 403, "campaign_key_invalid")


def test_one_campaign_key_never_opens_another(client, campaign):
    other = CampaignFactory()
    post(client, campaign, key=other.secret_key, origin=None)
    assert CallRequest.objects.get().campaign == other


# -- throttles --------------------------------------------------------------------


def test_one_address_is_throttled_per_campaign(client, campaign, settings):
    settings.C2C_THROTTLE_PER_ADDRESS = (2, 3600)
    numbers = ["06 12 34 56 78", "06 12 34 56 79", "06 12 34 56 80"]
    answers = [post(client, campaign, {"number": n, "consent": True}) for n in numbers]
    assert [a.status_code for a in answers] == [201, 201, 429]
    refused = answers[-1]
    assert_refused(refused, 429, "throttled")
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert refused["Access-Control-Allow-Origin"] == SHOP
    assert "Retry-After" in refused["Access-Control-Expose-Headers"]
    assert CallRequest.objects.count() == 2
    # Another address, and another campaign from the same address, count apart.
    assert (
        post(client, campaign, {"number": numbers[2], "consent": True}, address="198.51.100.1").status_code
        == 201
    )
    assert post(client, CampaignFactory(), {"number": numbers[2], "consent": True}).status_code == 201


def test_one_number_is_throttled_however_it_is_written(client, campaign, settings):
    settings.C2C_THROTTLE_PER_NUMBER = (2, 3600)
    writings = ["06 12 34 56 78", "+33612345678", "0033 6-12-34-56-78"]
    answers = [
        post(client, campaign, {"number": number, "consent": True}, address=f"198.51.100.{i}")
        for i, number in enumerate(writings)
    ]
    assert [a.status_code for a in answers] == [201, 200, 429]
    assert_refused(answers[-1], 429, "throttled")
    assert int(answers[-1]["Retry-After"]) > 0
    assert post(client, campaign, {"number": "06 12 34 56 99", "consent": True}).status_code == 201


@pytest.fixture
def redis_cache():
    """The cache on a Redis server of the test's own, as production runs it."""
    with running_redis() as url:
        if url is None:
            pytest.skip("redis-server is not installed")
        client = redis.Redis.from_url(url)
        redis_settings = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "cache",
        }
        # Back on the usual cache before the server stops: the suite's own fixtures clear it.
        with override_settings(CACHES={"default": redis_settings}):
            yield client
        client.close()


def test_on_redis_both_throttles_count_in_one_round_trip_and_hold(client, campaign, settings, redis_cache):
    settings.C2C_THROTTLE_PER_ADDRESS = (3, 3600)
    settings.C2C_THROTTLE_PER_NUMBER = (1, 600)
    assert post(client, campaign).status_code == 201
    before = redis_cache.info("commandstats")
    assert post(client, campaign, {"number": "06 12 34 56 79", "consent": True}).status_code == 201
    after = redis_cache.info("commandstats")
    called = {name: stats["calls"] - before.get(name, {}).get("calls", 0) for name, stats in after.items()}
    # One script call counts both windows: its INCRs, and the EXPIRE of the new one, run inside Redis.
    assert {name: calls for name, calls in called.items() if calls} == {
        "cmdstat_evalsha": 1,
        "cmdstat_incr": 2,
        "cmdstat_expire": 1,
        "cmdstat_info": 1,
    }
    again = post(client, campaign, {"number": "+33 6 12 34 56 78", "consent": True})
    assert_refused(again, 429, "throttled")
    assert 0 < int(again["Retry-After"]) <= 600
    fourth = post(client, campaign, {"number": "06 12 34 56 80", "consent": True})
    assert_refused(fourth, 429, "throttled")
    assert CallRequest.objects.count() == 2
    # Every window's key goes with its window.
    ttls = [redis_cache.ttl(key) for key in redis_cache.keys("cache:*c2c-throttle*")]
    assert len(ttls) == 4 and all(0 < ttl <= 3600 for ttl in ttls)


# -- CORS preflight ------------------------------------------------------------------


def preflight(client, origin):
    return client.options(
        URL,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-campaign-key",
        },
    )


def test_the_preflight_lets_a_campaign_site_post(client, campaign):
    response = preflight(client, SHOP)
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert response["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert set(response["Access-Control-Allow-Headers"].lower().split(", ")) == {
        "content-type",
        "x-campaign-key",
    }
    assert "Origin" in response["Vary"]


@pytest.mark.parametrize("origin", ["https://evil.example.net", "https://shop.example.co", "example.com", ""])
def test_the_preflight_says_nothing_to_other_sites(client, campaign, origin):
    response = preflight(client, origin)
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Headers" not in response


def test_the_preflight_ignores_inactive_campaigns(client, campaign):
    campaign.active = False
    campaign.save()
    assert "Access-Control-Allow-Origin" not in preflight(client, SHOP)


# -- the status URL --------------------------------------------------------------------


def status_of(client, request, origin=SHOP):
    return client.get(f"/api/click2call/status/{request.status_token}/", headers={"Origin": origin})


def test_the_status_url_says_how_it_goes_and_nothing_personal(client, campaign):
    status_url = post(client, campaign).json()["status_url"]
    response = client.get(status_url, headers={"Origin": SHOP})
    assert response.status_code == 200
    assert response.json() == {
        "status": "PENDING",
        "final": False,
        "progress": "waiting",
        "tries": 0,
        "attempts": [],
    }
    assert response["Access-Control-Allow-Origin"] == SHOP
    text = response.content.decode()
    for personal in ("612345678", "Ana", "order 42", "203.0.113"):
        assert personal not in text


def test_the_status_url_is_not_readable_by_other_sites(client, campaign):
    response = status_of(client, CallRequestFactory(campaign=campaign), origin="https://evil.example.net")
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize("token", ["nope", "a" * 32, "%00", "x" * 300])
def test_an_unknown_status_token_is_404(client, campaign, token):
    CallRequestFactory(campaign=campaign)
    assert_refused(client.get(f"/api/click2call/status/{token}/"), 404, "not_found")


def test_the_progress_follows_the_legs(client, campaign):
    request = CallRequestFactory(campaign=campaign, status=CallRequest.Status.DIALING, tries=1)
    attempt = CallAttemptFactory(request=request, seq=1, channel_id="c2c-leg-a")
    now = timezone.now()

    def progress():
        return status_of(client, request).json()["progress"]

    first = CallRecordFactory(uniqueid="c2c-leg-a", linkedid="c2c-leg-a", state="ringing")
    assert progress() == "calling you"
    first.answered_at, first.state = now, "answered"
    first.save()
    assert progress() == "calling the company"
    CallRecordFactory(uniqueid="c2c-leg-b", linkedid="c2c-leg-a", answered_at=now, state="answered")
    assert progress() == "connected"
    attempt.status = CallAttempt.Status.COMPLETED
    attempt.save()
    request.status = CallRequest.Status.COMPLETED
    request.save()
    body = status_of(client, request).json()
    assert (body["final"], body["progress"], body["attempts"]) == (
        True,
        "completed",
        [{"seq": 1, "kind": "auto", "status": "COMPLETED", "progress": "completed"}],
    )


def test_the_company_first_says_calling_the_company_first(client, campaign):
    request = CallRequestFactory(campaign=campaign, status=CallRequest.Status.DIALING)
    CallAttemptFactory(request=request, seq=1, first_party="company", status=CallAttempt.Status.CLAIMED)
    assert status_of(client, request).json()["progress"] == "calling the company"


@pytest.mark.parametrize(
    "status, words",
    [("FAILED_USER", "failed: you did not answer"), ("FAILED_COMPANY", "failed: the company did not answer")],
)
def test_a_failed_request_says_whose_side_failed(client, campaign, status, words):
    request = CallRequestFactory(campaign=campaign, status=status, tries=3)
    CallAttemptFactory(request=request, seq=1, status=status)
    body = status_of(client, request).json()
    assert (body["final"], body["progress"], body["tries"]) == (True, words, 3)


def test_a_request_between_tries_waits_to_try_again(client, campaign):
    request = CallRequestFactory(campaign=campaign, tries=1)
    CallAttemptFactory(request=request, seq=1, status=CallAttempt.Status.FAILED_USER)
    assert status_of(client, request).json()["progress"] == "waiting to try again"


def test_windows_are_clock_aligned_and_retry_after_is_when_the_next_request_is_taken(
    client, campaign, settings, monkeypatch
):
    """The README's promise: fixed windows aligned on the clock (an hour from :00 UTC), and a
    429's Retry-After is exactly the time left in the window that refused it."""
    from click2call.api import throttles

    settings.C2C_THROTTLE_PER_ADDRESS = (1, 3600)
    now = 1_800_000_000 + 2100.25  # 35 min 0.25 s into an hour
    monkeypatch.setattr(throttles.time, "time", lambda: now)
    assert post(client, campaign).status_code == 201
    refused = post(client, campaign, {"number": "06 12 34 56 79", "consent": True})
    assert_refused(refused, 429, "throttled")
    assert int(refused["Retry-After"]) == 1500
    now += 1499
    assert post(client, campaign, {"number": "06 12 34 56 79", "consent": True}).status_code == 429
    now += 1
    assert post(client, campaign, {"number": "06 12 34 56 79", "consent": True}).status_code == 201
