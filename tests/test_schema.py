"""The API schema says what the API does: checked by reading it, and by Schemathesis against a live server.

Schemathesis sends generated requests to every operation of /api/schema/ (a real server:
pytest-django's live_server) and runs all its checks on each answer: no 5xx, status codes,
content types, headers and bodies as documented, auth not ignored, bad data refused.
Bounded and seeded (derandomize) so CI sees the same few hundred requests each run.
"""

import time

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts import services as account_services
from config.filters import EMPTY_FILTER
from telephony.services import push as push_services
from tests.click2call.factories import CampaignFactory
from tests.factories import UserFactory

# -- the schema, read ---------------------------------------------------------


@pytest.fixture
def schema(db):
    return Client().get("/api/schema/", headers={"Accept": "application/json"}).json()


def test_pushed_events_declare_body_token_and_answers(schema):
    operation = schema["paths"]["/api/telephony/events/"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PushedEvent"}
    assert schema["components"]["schemas"]["PushedEvent"]["required"] == ["event", "eventTime", "sessionid"]
    assert operation["security"] == [{"pushToken": []}]
    assert schema["components"]["securitySchemes"]["pushToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Token <key>`, the key of one of the company's active push tokens.",
    }
    assert set(operation["responses"]) == {"202", "400", "401", "413", "415"}
    assert operation["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CallRecord"
    }


def test_the_banner_api_declares_its_key_and_every_refusal(schema):
    operation = schema["paths"]["/api/click2call/requests/"]["post"]
    assert operation["security"] == [{"campaignKey": []}]
    assert schema["components"]["securitySchemes"]["campaignKey"]["name"] == "X-Campaign-Key"
    assert set(operation["responses"]) == {"200", "201", "400", "403", "413", "415", "422", "429"}
    for code, words in [
        ("400", "consent_required"),
        ("403", "origin_not_allowed"),
        ("422", "blocked_prefix"),
    ]:
        assert words in operation["responses"][code]["description"]
    status = schema["paths"]["/api/click2call/status/{token}/"]["get"]
    assert status["security"] == [{}]
    assert set(status["responses"]) == {"200", "404"}


# The banner's operations: a key that refuses with 403 (never 401), and the public status URL.
BANNER_SECURITY = ([{"campaignKey": []}], [{}])


def test_every_operation_documents_its_errors(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            if operation.get("security") in BANNER_SECURITY:
                assert "403" in codes or "{" in path, (method, path)
            elif operation.get("security") != [{"pushToken": []}]:
                assert {"401", "403"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            for code in codes - {"200", "201", "202", "204"}:
                content = operation["responses"][code]["content"]["application/json"]["schema"]
                assert content["$ref"] in (
                    "#/components/schemas/Error",
                    "#/components/schemas/ValidationError",
                    "#/components/schemas/BannerError",
                )


def test_lists_document_their_page_bounds(schema):
    parameters = {
        p["name"]: p["schema"] for p in schema["paths"]["/api/telephony/calls/"]["get"]["parameters"]
    }
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
    assert parameters["offset"] == {"type": "integer", "minimum": 0, "maximum": 2147483647, "default": 0}
    assert "400" in schema["paths"]["/api/telephony/calls/"]["get"]["responses"]


# -- the schema, tried --------------------------------------------------------


@pytest.fixture
def api_credentials(transactional_db):
    user = UserFactory()
    token = push_services.push_token_create(company=user.company)
    _, api_key = account_services.api_token_create(user=user, name="schemathesis")
    campaign = CampaignFactory(company=user.company)
    # By security scheme name: Schemathesis calls each operation with the credentials it asks for.
    return {
        "basicAuth": {"username": user.username, "password": "pass-word-123"},
        "bearerAuth": {"bearer": api_key},
        "pushToken": {"api_key": f"Token {token.key}"},
        "campaignKey": {"api_key": campaign.secret_key},
        "company": user.company,
    }


# Schemathesis' own pytest loader (`schemathesis.pytest.from_fixture`) fails on pytest 9.2,
# so each operation's strategy is driven by Hypothesis here.
@pytest.mark.long
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_does_what_its_schema_says(live_server, api_credentials, mode, settings):
    # Schemathesis sends wrong credentials on purpose, many times: the login throttle (tested on its
    # own in tests/accounts/test_login.py) would answer 429 to its checks of the 401.
    settings.LOGIN_FAILURES_PER_ACCOUNT = settings.LOGIN_FAILURES_PER_ADDRESS = 10**6
    # Likewise the banner's throttles (tested in tests/click2call/test_api.py).
    settings.C2C_THROTTLE_PER_ADDRESS = settings.C2C_THROTTLE_PER_NUMBER = (10**6, 3600)
    schemes = {name: value for name, value in api_credentials.items() if name != "company"}
    config = SchemathesisConfig.from_dict({"auth": {"openapi": schemes}})
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:
        check_operation(operation, mode)
    # Generated eventTimes are seldom times; this one is, so the 202 is checked too.
    push = schema["/api/telephony/events/"]["POST"]
    now = str(int(time.time()))
    pushed = push.Case(body={"event": "ringing", "sessionid": "st-1", "eventTime": now})
    # A token of its own: the run above may have revoked the one it was given.
    fresh = push_services.push_token_create(company=api_credentials["company"])
    token = {"Authorization": f"Token {fresh.key}"}
    assert pushed.call_and_validate(headers=token, checks=CHECKS.get_all()).status_code == 202


def check_operation(operation, mode):
    excluded = []
    if {"pushToken": []} in operation.definition.raw["security"]:
        # A pushed event's time and order are checked by the service (an answer after its
        # hang-up, a time no calendar has): a body the schema allows may still be a 400.
        excluded.append(positive_data_acceptance)
    if operation.path in ("/api/click2call/stats/", "/api/tickets/log/", "/api/tickets/calls/"):
        # Two dates the schema allows may still be a period that ends before it starts, or is too long.
        excluded.append(positive_data_acceptance)
    if operation.path.startswith("/api/tickets/") and operation.method.upper() != "GET":
        # A ticket line's writes depend on its rows: a next ticket above those given, a technician in
        # charge or in the hunt order that is the line's own, a template naming known fields only.
        excluded.append(positive_data_acceptance)
    if {"campaignKey": []} in operation.definition.raw["security"]:
        # Any string is a number to the schema; only a real phone number with a rate is taken.
        excluded.append(positive_data_acceptance)

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=25,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case):
        case.call_and_validate(checks=CHECKS.get_all(), excluded_checks=excluded)

    run()


def test_queues_and_errors_conform_to_the_schema(live_server, api_credentials):
    """Rows and errors Schemathesis' random walk seldom meets: a queue with and without a recording
    template (`""` once matched both halves of a oneOf), a missing row, a refused filter."""
    from tests.queues.factories import QueueFactory

    company = api_credentials["company"]
    QueueFactory(company=company, record_template="")
    QueueFactory(company=company, record_template="queues/{queue}/{date}-{member}.wav")
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    auth = {"Authorization": f"Bearer {api_credentials['bearerAuth']['bearer']}"}
    checks = CHECKS.get_all()
    listed = schema["/api/queues/queues/"]["GET"].Case().call_and_validate(headers=auth, checks=checks)
    assert [row["record_template"] for row in listed.json()["results"]].count("") == 1
    missing = schema["/api/queues/queues/{id}/"]["GET"].Case(path_parameters={"id": 2**31})
    answer = missing.call_and_validate(headers=auth, checks=checks)
    assert answer.json() == {"code": "not_found", "detail": "Not found."}
    refused = schema["/api/queues/agents/"]["GET"].Case(query={"status": ""}).call(headers=auth)
    assert refused.status_code == 400 and refused.json()["fields"] == {"status": [EMPTY_FILTER]}
