"""The telephony API under hostile input: every request is answered, a refusal says why."""

import base64

import pytest

from telephony.models import CallRecord
from telephony.services import push as push_services
from tests import hostile
from tests.factories import UserFactory
from tests.telephony.factories import CallRecordFactory

pytestmark = pytest.mark.django_db

EVENTS = "/api/telephony/events/"
CALLS = "/api/telephony/calls/"
DELIVERIES = "/api/telephony/webhook-deliveries/"
LISTS = [CALLS, DELIVERIES]


@pytest.fixture
def token_header(company):
    return {"Authorization": f"Token {push_services.push_token_create(company=company).key}"}


def event(**fields):
    return {"event": "ringing", "sessionid": "s-1", "eventTime": "2026-11-23 10:00:00", **fields}


# -- POST /api/telephony/events/ ------------------------------------------------


def test_deeply_nested_body_is_a_400_not_a_recursion_error(client, token_header):
    response = hostile.assert_rejects_cleanly(
        client, "post", EVENTS, hostile.DEEP_NESTING, status=400, headers=token_header
    )
    assert "nested deeper than 32" in response.json()["detail"]


def test_nesting_at_the_limit_is_parsed(client, token_header):
    # 32 levels pass the parser; the serializer then refuses the list of lists.
    response = hostile.assert_rejects_cleanly(
        client, "post", EVENTS, b"[" * 32 + b"]" * 32, status=400, headers=token_header
    )
    assert "Expected a dictionary" in str(response.json())


@pytest.mark.parametrize("body", hostile.MALFORMED_JSON.values(), ids=hostile.MALFORMED_JSON.keys())
def test_malformed_json_is_a_400(client, token_header, body):
    hostile.assert_rejects_cleanly(client, "post", EVENTS, body, status=400, headers=token_header)
    assert not CallRecord.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"event": "ringing", "sessionid": "s", "eventTime": "1", "activenum": NaN}', "NaN"),
        (b'{"event": "ringing", "sessionid": "a", "sessionid": "b", "eventTime": "1"}', "duplicate key"),
        (b'{"event": "ringing", "sessionid": "\\udc00", "eventTime": "1"}', "unpaired surrogate"),
    ],
    ids=["NaN", "duplicate key", "unpaired surrogate"],
)
def test_json_python_would_take_is_refused_with_its_reason(client, token_header, body, message):
    response = hostile.assert_rejects_cleanly(client, "post", EVENTS, body, status=400, headers=token_header)
    assert message in response.json()["detail"]
    assert not CallRecord.objects.exists()


def test_body_over_the_limit_is_a_413(client, token_header):
    response = hostile.assert_rejects_cleanly(
        client, "post", EVENTS, hostile.oversize_body(), status=413, headers=token_header
    )
    assert "larger than" in response.json()["detail"]
    assert not CallRecord.objects.exists()


def test_body_that_is_not_json_is_a_415(client, token_header):
    hostile.assert_rejects_cleanly(
        client, "post", EVENTS, b"event=ringing", status=415, headers=token_header,
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip


@pytest.mark.parametrize("field", ["event", "sessionid", "eventTime", "calltype", "activenum", "callernum"])
@pytest.mark.parametrize("value", hostile.WRONG_TYPES.values(), ids=hostile.WRONG_TYPES.keys())
def test_wrong_types_never_fail_the_server(client, token_header, field, value):
    hostile.assert_answers_cleanly(client, "post", EVENTS, event(**{field: value}), headers=token_header)


@pytest.mark.parametrize("when", hostile.ABSURD_TIMES.values(), ids=hostile.ABSURD_TIMES.keys())
@pytest.mark.parametrize("kind", ["ringing", "answer", "hangup"])
def test_absurd_times_never_fail_the_server(client, token_header, kind, when):
    hostile.assert_answers_cleanly(
        client, "post", EVENTS, event(event=kind, eventTime=when), headers=token_header
    )


@pytest.mark.parametrize("text", hostile.HOSTILE_STRINGS.values(), ids=hostile.HOSTILE_STRINGS.keys())
@pytest.mark.parametrize("field", ["sessionid", "activenum", "callernum"])
def test_hostile_strings_are_stored_as_sent_or_refused(client, token_header, field, text):
    response = hostile.assert_answers_cleanly(
        client, "post", EVENTS, event(**{field: text}), headers=token_header
    )
    if response.status_code == 202:
        record = CallRecord.objects.get()
        stored = {"sessionid": record.uniqueid, "activenum": record.callee, "callernum": record.caller}
        assert stored[field] == text.strip()  # DRF trims a string's ends
    else:
        assert not CallRecord.objects.exists()


# Headers arrive as WSGI gives them: bytes read as latin-1 ("\xd9\xa1" is UTF-8 for "١").
@pytest.mark.parametrize(
    "authorization",
    ["Token", "Token a b", "Token \xd9\xa1\xd9\xa2", "Basic !!!", "Token " + "k" * 10_000, "Bearer x"],
)
def test_bad_token_headers_are_401(client, token_header, authorization):
    hostile.assert_rejects_cleanly(
        client, "post", EVENTS, event(), status=401, headers={"Authorization": authorization}
    )


# -- GET lists and details ----------------------------------------------------


BAD_LIMITS = {**hostile.BAD_INTEGER_QUERY_VALUES, "zero": "0", "over 500": "501", "absurd": "100000000"}
BAD_OFFSETS = {**hostile.BAD_INTEGER_QUERY_VALUES, "over 32 bits": "2147483648"}
LIMIT_MESSAGE = ["Must be a whole number from 1 to 500."]
OFFSET_MESSAGE = ["Must be a whole number from 0 to 2147483647."]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("value", BAD_LIMITS.values(), ids=BAD_LIMITS.keys())
def test_bad_limit_is_a_400_naming_it(client, company_user, url, value):
    client.force_login(company_user)
    response = hostile.assert_rejects_cleanly(client, "get", f"{url}?limit={value}", status=400)
    expected = {"code": "invalid", "detail": LIMIT_MESSAGE[0], "fields": {"limit": LIMIT_MESSAGE}}
    assert response.json() == expected


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("value", BAD_OFFSETS.values(), ids=BAD_OFFSETS.keys())
def test_bad_offset_is_a_400_naming_it(client, company_user, url, value):
    client.force_login(company_user)
    response = hostile.assert_rejects_cleanly(client, "get", f"{url}?offset={value}", status=400)
    expected = {"code": "invalid", "detail": OFFSET_MESSAGE[0], "fields": {"offset": OFFSET_MESSAGE}}
    assert response.json() == expected


@pytest.mark.parametrize("url", LISTS)
def test_limits_at_the_bounds_are_served(client, company_user, url):
    client.force_login(company_user)
    assert client.get(f"{url}?limit=500&offset=2147483647").json()["results"] == []
    assert client.get(f"{url}?limit=1&offset=0").status_code == 200


def test_limit_and_offset_page_through_the_calls(client, company_user):
    CallRecordFactory.create_batch(3, company=company_user.company)
    client.force_login(company_user)
    page = client.get(f"{CALLS}?limit=2&offset=1").json()
    assert (page["count"], len(page["results"])) == (3, 2)


@pytest.mark.parametrize("url", LISTS)
def test_unknown_query_parameters_are_ignored(client, company_user, url):
    client.force_login(company_user)
    hostile.assert_answers_cleanly(client, "get", f"{url}?format=xml&%00=1&q=%E2%80%AE")


# "-1" and "x" match no URL: the JSON 404 of config.views.not_found.
@pytest.mark.parametrize("pk", ["0", "99999999999999999999", "9223372036854775808", "-1", "x"])
def test_absurd_call_ids_are_404(client, company_user, pk):
    client.force_login(company_user)
    hostile.assert_rejects_cleanly(client, "get", f"{CALLS}{pk}/", status=404)


@pytest.mark.parametrize("url", [*LISTS, f"{CALLS}1/"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_read_only_resources_refuse_writes(client, company_user, url, method):
    client.force_login(company_user)
    hostile.assert_rejects_cleanly(client, method, url, hostile.DEEP_NESTING, status=405)


@pytest.mark.parametrize("url", [*LISTS, f"{CALLS}1/"])
@pytest.mark.parametrize(
    "authorization",
    [None, "Basic !!!", "Basic " + base64.b64encode("\u0663:\u200f".encode()).decode(), "Token x"],
    ids=["none", "not base64", "unknown user", "push token"],
)
def test_without_a_company_user_the_answer_is_401_or_403(client, url, authorization):
    # 401 or 403: the "auth" change makes every refusal a 401 with WWW-Authenticate.
    response = hostile.send(
        client, "get", url, headers={"Authorization": authorization} if authorization else {}
    )
    assert response.status_code in (401, 403)
    hostile.assert_error_body(response)


def test_staff_without_a_company_is_refused(client):
    client.force_login(UserFactory(company=None, is_staff=True))
    for url in LISTS:
        hostile.assert_rejects_cleanly(client, "get", url, status=403)
