"""GET /api/click2call/stats/: the portal's figures as JSON, its credentials, tenancy, refusals."""

import datetime as dt
import zoneinfo

import pytest
from django.urls import reverse

from accounts import services as account_services
from click2call.models import CallRequest
from tests.click2call.factories import CampaignFactory
from tests.click2call.stats_data import COMPANY, attempt_with_legs, request_at
from tests.hostile import (
    ABSURD_TIMES,
    BAD_INTEGER_QUERY_VALUES,
    HOSTILE_STRINGS,
    assert_answers_cleanly,
    assert_rejects_cleanly,
)

pytestmark = pytest.mark.django_db
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
URL = "/api/click2call/stats/"
Status = CallRequest.Status


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


@pytest.fixture
def campaign(company):
    return CampaignFactory(company=company, name="Spring")


@pytest.fixture
def history(campaign):
    done = request_at(campaign, paris(2026, 3, 10, 9), country="FR", carrier="Orange")
    attempt_with_legs(done, first_ring=4, second_rings=(6,), talk=60)
    failed = request_at(campaign, paris(2026, 3, 10, 23, 30), status=Status.FAILED_USER, carrier="SFR")
    attempt_with_legs(failed, first_ring=None)
    company_first = request_at(campaign, paris(2026, 3, 9, 12))
    attempt_with_legs(company_first, first_party=COMPANY, first_ring=10, second_rings=(2,), talk=30)
    return campaign


@pytest.fixture
def api(client, company_user):
    client.force_login(company_user)
    return client


def test_the_url_is_named():
    assert reverse("click2call-api:stats") == URL


def test_a_day_with_legs_previous_day_deltas_series_and_directions(api, history):
    body = api.get(URL, {"from": "2026-03-10", "to": "2026-03-10"}).json()
    period = body["period"]
    assert (period["from"], period["to"], period["requests"], period["completed"]) == (
        "2026-03-10",
        "2026-03-10",
        2,
        1,
    )
    assert period["failed_user"] == 1 and period["open"] == 0
    assert period["legs"]["visitor"]["legs"] == 2 and period["legs"]["visitor"]["answer_rate"] == 50.0
    assert period["legs"]["company"] == {
        "legs": 1,
        "answered": 1,
        "answer_rate": 100.0,
        "average_time_to_answer": 6.0,
        "talk_seconds": 60,
        "average_talk": 60.0,
        "longest_talk": 60,
    }
    assert body["previous"]["from"] == "2026-03-09" and body["previous"]["requests"] == 1
    requests = next(delta for delta in body["deltas"] if delta["key"] == "requests")
    assert requests == {"key": "requests", "this": 2, "other": 1, "absolute": 1, "relative": 100.0}
    assert len(body["series"]) == 24 and body["series"][9]["at"] == "2026-03-10T09:00:00"
    assert body["series"][9]["completed"] == 1
    assert [(row["carrier"], row["requests"]) for row in body["directions"]] == [("Orange", 1), ("SFR", 1)]
    assert body["campaigns"] == [
        {
            "campaign": history.pk,
            "name": "Spring",
            "requests": 2,
            "completed": 1,
            "failed_user": 1,
            "failed_company": 0,
            "open": 0,
        }
    ]
    assert body["time_zone"] == "Europe/Paris"
    assert set(body["live"]) == {
        "in_progress",
        "retries_waiting",
        "failed_waiting",
        "next_retry_at",
        "oldest_failed_at",
    }


def test_a_campaign_and_an_empty_period(api, company, history):
    other = CampaignFactory(company=company)
    request_at(other, paris(2026, 3, 10, 10))
    body = api.get(URL, {"from": "2026-03-01", "to": "2026-03-31", "campaign": other.pk}).json()
    assert body["campaign"] == other.pk
    assert body["period"]["requests"] == 1 and [row["campaign"] for row in body["campaigns"]] == [other.pk]
    empty = api.get(URL, {"from": "2025-01-01", "to": "2025-01-07"}).json()
    assert empty["period"]["requests"] == 0 and empty["period"]["completion_rate"] is None
    assert empty["period"]["legs"]["visitor"]["answer_rate"] is None
    assert len(empty["series"]) == 7 and empty["directions"] == []


def test_api_token_and_basic_auth_work_and_anonymous_is_401(client, company_user, history):
    _, key = account_services.api_token_create(user=company_user, name="stats")
    answer = client.get(
        URL, {"from": "2026-03-10", "to": "2026-03-10"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200 and answer.json()["period"]["requests"] == 2
    assert_rejects_cleanly(client, "get", URL, status=401)


def test_the_banner_key_is_no_credential(client, campaign):
    assert_rejects_cleanly(client, "get", URL, status=401, headers={"X-Campaign-Key": campaign.secret_key})


def test_another_company_sees_only_its_own(client, history, other_company_user):
    client.force_login(other_company_user)
    body = client.get(URL, {"from": "2026-03-10", "to": "2026-03-10"}).json()
    assert body["period"]["requests"] == 0 and body["campaigns"] == []
    # Its campaign is no campaign of theirs: the same answer as a campaign that does not exist.
    refused = assert_rejects_cleanly(client, "get", f"{URL}?campaign={history.pk}", status=400)
    missing = assert_rejects_cleanly(client, "get", f"{URL}?campaign=999999", status=400)
    assert refused.json() == missing.json()
    assert refused.json()["fields"] == {"campaign": ["No such campaign in your company."]}


@pytest.mark.parametrize(
    "query, words",
    [
        ("from=2026-03-10&to=2026-03-01", "ends before it starts"),
        ("from=2024-01-01&to=2026-03-01", "at most 366 days"),
        ("from=1000-01-01&to=1000-01-02", "A date from"),
        ("to=9999-12-31", "A date from"),
        ("from=2026-02-30", "Date has wrong format"),
        ("from=yesterday", "Date has wrong format"),
    ],
)
def test_bad_periods_are_400_saying_why(api, query, words):
    body = assert_rejects_cleanly(api, "get", f"{URL}?{query}", status=400).json()
    assert body["code"] == "invalid" and words in body["detail"]


@pytest.mark.parametrize("value", BAD_INTEGER_QUERY_VALUES.values())
def test_bad_campaign_ids_are_400(api, value):
    response = api.get(URL, {"campaign": value})
    assert response.status_code == 400 and response.json()["code"] == "invalid"


@pytest.mark.parametrize("value", [*HOSTILE_STRINGS.values(), *ABSURD_TIMES.values()])
def test_hostile_dates_never_500(api, value):
    for name in ("from", "to", "campaign"):
        response = api.get(URL, {name: value})
        assert response.status_code in (200, 400), (name, value, response.status_code)


def test_a_fixed_number_of_queries(api, company, history, django_assert_num_queries):
    # Session, user, company; the campaign; the series (adding up to the period's counts), the legs,
    # previous (2), directions, campaigns, live.
    query = {"from": "2026-03-01", "to": "2026-03-31", "campaign": history.pk}
    with django_assert_num_queries(11):
        api.get(URL, query)
    for _ in range(3):
        attempt_with_legs(request_at(history, paris(2026, 3, 12, 9)), first_ring=1, second_rings=(1,))
    with django_assert_num_queries(11):
        assert api.get(URL, query).json()["period"]["requests"] == 6
    assert_answers_cleanly(api, "get", URL)
