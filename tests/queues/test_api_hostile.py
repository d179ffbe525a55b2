"""Hostile input against the queues API: always a clean 4xx in `{"code", "detail"}`, never a 500."""

import pytest

from queues.models import Agent, Tier
from tests import hostile
from tests.queues.factories import AgentFactory, QueueFactory

pytestmark = pytest.mark.django_db

API = "/api/queues"


@pytest.fixture
def api(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def agent(company):
    return AgentFactory(company=company, name="1000")


def assert_queues_error(response, code=None):
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if code:
        assert body["code"] == code, body


@pytest.mark.parametrize("body", hostile.MALFORMED_JSON.values(), ids=hostile.MALFORMED_JSON)
def test_malformed_json_is_a_400(api, body):
    response = hostile.assert_rejects_cleanly(api, "post", f"{API}/agents/", body, status=400)
    assert_queues_error(response, "parse_error")


def test_deep_nesting_oversize_and_form_bodies(api, agent):
    url = f"{API}/agents/{agent.pk}/"
    assert_queues_error(hostile.assert_rejects_cleanly(api, "patch", url, hostile.DEEP_NESTING, status=400))
    response = hostile.assert_rejects_cleanly(api, "patch", url, hostile.oversize_body(), status=413)
    assert_queues_error(response, "request_too_large")
    response = hostile.assert_rejects_cleanly(
        api, "patch", url, b"name=x", status=415, content_type="text/plain"
    )
    assert_queues_error(response, "unsupported_media_type")


@pytest.mark.parametrize(
    "field", ["name", "contact", "type", "route", "wrap_up_time", "reserve_agents", "user"]
)
@pytest.mark.parametrize("value", hostile.WRONG_TYPES.values(), ids=hostile.WRONG_TYPES)
def test_wrong_types_for_an_agent_are_refused_or_taken(api, agent, field, value):
    response = hostile.assert_answers_cleanly(api, "patch", f"{API}/agents/{agent.pk}/", {field: value})
    if response.status_code >= 400:
        assert_queues_error(response)


@pytest.mark.parametrize("field", ["name", "contact", "route"])
@pytest.mark.parametrize("value", hostile.HOSTILE_STRINGS.values(), ids=hostile.HOSTILE_STRINGS)
def test_hostile_agent_strings_are_refused(api, field, value):
    body = {"name": "2000", "contact": "5552000", field: value}
    if (field, value) == ("contact", "+15551001"):
        # A formula to a spreadsheet, but a good international number here.
        assert api.post(f"{API}/agents/", body, content_type="application/json").status_code == 201
        assert Agent.objects.get().contact == value
        return
    response = hostile.assert_rejects_cleanly(api, "post", f"{API}/agents/", body, status=400)
    assert_queues_error(response, "invalid")
    assert field in response.json()["fields"]
    assert not Agent.objects.exists()


@pytest.mark.parametrize("value", hostile.WRONG_TYPES.values(), ids=hostile.WRONG_TYPES)
def test_wrong_types_for_a_tier_are_refused(api, agent, value):
    queue = QueueFactory(company=agent.company)
    for body in ({"queue": value, "agent": agent.pk}, {"queue": queue.pk, "agent": agent.pk, "level": value}):
        response = hostile.assert_answers_cleanly(api, "post", f"{API}/tiers/", body)
        if response.status_code >= 400:
            assert_queues_error(response)
    assert Tier.objects.count() <= 1


@pytest.mark.parametrize("value", ["Available\x00", "available", "", "On Break " * 1000])
def test_unknown_statuses_are_a_400(api, agent, value):
    response = hostile.assert_rejects_cleanly(
        api, "post", f"{API}/agents/{agent.pk}/status/", {"status": value}, status=400
    )
    assert_queues_error(response, "invalid")
    assert Agent.objects.get().status == "Available"


BAD_IDS = {**hostile.BAD_INTEGER_QUERY_VALUES, "zero": "0", "beyond 2**63": str(2**63)}


@pytest.mark.parametrize(
    "path, name", [("agents", "queue"), ("tiers", "agent"), ("members", "queue"), ("events", "agent")]
)
@pytest.mark.parametrize("value", BAD_IDS.values(), ids=BAD_IDS)
def test_bad_filter_ids_are_a_400(api, path, name, value):
    response = hostile.assert_rejects_cleanly(api, "get", f"{API}/{path}/?{name}={value}", status=400)
    assert_queues_error(response, "invalid")


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "offset=-1", "action=nope", "status=Asleep"])
def test_bad_list_parameters_are_a_400(api, query):
    path = "events" if query.startswith("action") else "agents"
    assert_queues_error(hostile.assert_rejects_cleanly(api, "get", f"{API}/{path}/?{query}", status=400))
