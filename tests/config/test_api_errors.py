"""Every refusal of the API has one body, `{"code", "detail"}`, whatever refused it; JSON under /api/ always.

The loops read the API's own schema, so an endpoint or a filter added later is covered too.
"""

import base64
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from config.filters import EMPTY_FILTER
from config.openapi import _string_schema_takes_empty
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db

NOT_FOUND = {"code": "not_found", "detail": "Not found."}
PAGINATION = {"limit", "offset"}
DATED = {"date", "date-time"}


@pytest.fixture
def schema(db):
    return Client().get("/api/schema/", headers={"Accept": "application/json"}).json()


def basic(username, password="pass-word-123"):
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def list_filters(schema):
    """(path, filter name) of every query filter of every list, pagination aside."""
    for path, operations in schema["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["in"] == "query" and parameter["name"] not in PAGINATION:
                yield path, parameter["name"]


def may_see_everything(user):
    """The company user holds the permissions some parts of the API ask for besides tenancy (call
    cards answer 404 to anyone without callcard_admin)."""
    user.user_permissions.add(Permission.objects.get(codename="callcard_admin"))
    return user


def test_every_list_filter_refuses_an_empty_value(client, company_user, schema):
    filters = list(list_filters(schema))
    # The queues lists' filters at least: ?status=, ?state=, ?action=, ?queue=, ?agent=.
    assert {name for _, name in filters} >= {"status", "state", "action", "queue", "agent"}
    client.force_login(may_see_everything(company_user))
    for path, name in filters:
        response = client.get(f"{path}?{name}=")
        assert response.status_code == 400, (path, name, response.status_code)
        expected = {"code": "invalid", "detail": EMPTY_FILTER, "fields": {name: [EMPTY_FILTER]}}
        assert response.json() == expected
        # The schema says the same: a given filter has a value.
        parameter = next(
            p for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "query" and p["name"] == name
        )
        given = parameter["schema"]
        # An integer, a yes/no, a date or a time has a value by its type; a text says it with minLength.
        assert (
            given["type"] in ("integer", "boolean") or given.get("format") in DATED or given["minLength"] >= 1
        ), path


def test_a_filter_with_a_value_still_filters(client, company_user):
    client.force_login(company_user)
    response = client.get("/api/queues/agents/?status=Available")
    assert response.status_code == 200


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(
    "path", ["/api/queues/agents/null,null/", "/api/telephony/calls/1e3/", "/api/no/such/thing/", "/api/"]
)
def test_a_path_no_url_matches_is_a_json_404_even_with_debug_on(client, company_user, settings, debug, path):
    settings.DEBUG = debug
    client.force_login(company_user)
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("debug", [True, False])
def test_a_host_not_allowed_is_a_json_400_under_api(client, settings, debug):
    settings.DEBUG = debug
    settings.ALLOWED_HOSTS = ["testserver"]
    response = client.get("/api/company/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.json() == {"code": "bad_request", "detail": "Bad request."}
    # The portal keeps its page.
    assert not client.get("/portal/", headers={"Host": "evil.example"})["Content-Type"].startswith(
        "application/json"
    )


def test_a_missing_slash_under_api_still_redirects(client, company_user):
    client.force_login(company_user)
    response = client.get("/api/telephony/calls")
    assert response.status_code == 301
    assert response["Location"] == "/api/telephony/calls/"


def missing_object_urls(schema):
    """Each GET with an id in its path, the id one that no row has."""
    for path, operations in schema["paths"].items():
        if "get" not in operations or "{" not in path:
            continue
        url = path
        for parameter in operations["get"]["parameters"]:
            if parameter["in"] == "path":
                value = "2147483600" if parameter["schema"]["type"] == "integer" else "no-such-token"
                url = url.replace("{" + parameter["name"] + "}", value)
        yield url


def test_every_404_is_the_same_body_naming_no_model(client, company_user, schema):
    urls = list(missing_object_urls(schema))
    assert "/api/telephony/calls/2147483600/" in urls and "/api/queues/agents/2147483600/" in urls
    client.force_login(company_user)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 404, url
        body = response.json()
        assert set(body) == {"code", "detail"} and body["code"] == "not_found", (url, body)
        assert "matches the given query" not in body["detail"], (url, body)
        if not url.startswith("/api/click2call/status/"):  # the banner's says which URL it was
            assert body == NOT_FOUND, url


def test_another_companys_object_is_the_same_404(client, company_user):
    from tests.telephony.factories import CallRecordFactory

    record = CallRecordFactory(company=CompanyFactory())
    client.force_login(company_user)
    assert client.get(f"/api/telephony/calls/{record.pk}/").json() == NOT_FOUND


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


def test_authentication_and_permission_refusals_have_codes(client, company_user):
    response = client.get("/api/company/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Basic")
    wrong = client.get("/api/company/", headers=basic(company_user.username, "wrong"))
    assert_error(wrong, 401, "authentication_failed")
    closed = UserFactory(company=CompanyFactory(active=False))
    assert_error(client.get("/api/company/", headers=basic(closed.username)), 403, "permission_denied")


def test_a_locked_login_is_a_429_with_a_code_and_retry_after(client, company_user, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 1
    client.get("/api/company/", headers=basic(company_user.username, "wrong"))
    response = client.get("/api/company/", headers=basic(company_user.username))
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_method_media_type_and_body_refusals_have_codes(client, company_user, settings):
    client.force_login(company_user)
    response = client.post("/api/company/", {}, content_type="application/json")
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"]
    assert_error(client.get("/api/company/", headers={"Accept": "application/xml"}), 406, "not_acceptable")
    agents = "/api/queues/agents/"
    assert_error(client.post(agents, "name=x", content_type="text/plain"), 415, "unsupported_media_type")
    assert_error(client.post(agents, b"{", content_type="application/json"), 400, "parse_error")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    big = b'{"name": "' + b"x" * 200 + b'"}'
    assert_error(client.post(agents, big, content_type="application/json"), 413, "request_too_large")


def test_a_body_refused_field_by_field_names_the_fields(client, company_user):
    client.force_login(company_user)
    response = client.post("/api/queues/agents/", {}, content_type="application/json")
    body = assert_error(response, 400, "invalid")
    assert set(body["fields"]) >= {"name", "contact"}
    assert body["detail"] == body["fields"]["name"][0]


def blank_alternatives(schema):
    """Each `oneOf: [constraints, {maxLength: 0}]` of the schema's components, by its place."""
    for name, component in schema["components"]["schemas"].items():
        for field, definition in component.get("properties", {}).items():
            if "oneOf" in definition and {"type": "string", "maxLength": 0} in definition["oneOf"]:
                yield f"{name}.{field}", definition["oneOf"]


def test_no_blank_string_matches_two_alternatives_of_a_oneof(schema):
    for place, alternatives in blank_alternatives(schema):
        constraints = next(a for a in alternatives if a != {"type": "string", "maxLength": 0})
        assert not _string_schema_takes_empty(constraints), place
    record_template = schema["components"]["schemas"]["Queue"]["properties"]["record_template"]
    assert "oneOf" not in record_template
    assert re.search(record_template["pattern"], "") and record_template["type"] == "string"


def test_errors_are_documented_with_their_code(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "detail"]
    validation = schema["components"]["schemas"]["ValidationError"]
    assert set(validation["properties"]) == {"code", "detail", "fields"}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_operation_refuses_a_request_without_credentials_with_a_code(client, schema):
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if {"basicAuth": []} not in operation.get("security", []):
                continue  # the banner's key, the push token and the public status URL say their own
            response = client.generic(method.upper(), concrete(path), b"{}", content_type="application/json")
            assert_error(response, 401, "not_authenticated")
            checked += 1
    assert checked >= 20


def test_every_path_refuses_a_method_it_has_not_with_a_code(client, company_user, schema):
    client.force_login(may_see_everything(company_user))
    for path, operations in schema["paths"].items():
        if any({"basicAuth": []} not in operation.get("security", []) for operation in operations.values()):
            continue  # the banner's key and the push token are checked first, and say their own
        missing = next(m for m in ("put", "delete", "post", "get") if m not in operations)
        response = client.generic(missing.upper(), concrete(path), b"{}", content_type="application/json")
        assert_error(response, 405, "method_not_allowed")
        assert response["Allow"], path
