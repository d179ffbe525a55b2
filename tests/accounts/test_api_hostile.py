"""The accounts API (/api/company/) under hostile input: answered, and a refusal says why."""

import base64

import pytest

from tests import hostile
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db

COMPANY = "/api/company/"


def basic(credentials: bytes) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize(
    "body", [hostile.DEEP_NESTING, *hostile.MALFORMED_JSON.values(), {"name": "=1+1"}], ids=repr
)
def test_company_is_read_only_whatever_the_body(client, company_user, method, body):
    client.force_login(company_user)
    hostile.assert_rejects_cleanly(client, method, COMPANY, body, status=405)
    company_user.company.refresh_from_db()
    assert company_user.company.name != "=1+1"


@pytest.mark.parametrize(
    "credentials",
    [b"", b"nocolon", b"user:", b":pass", b"\xff\xfe:\xff", "\u0663:\u200f".encode(), b"x" * 10_000 + b":y"],
)
def test_wrong_basic_credentials_are_refused(client, credentials):
    response = hostile.send(client, "get", COMPANY, headers=basic(credentials))
    # 401 or 403: the "auth" change makes every refusal a 401 with WWW-Authenticate.
    assert response.status_code in (401, 403)
    hostile.assert_error_body(response)


@pytest.mark.parametrize("authorization", ["Basic", "Basic !!!", "Basic a b", "Basic " + "=" * 50])
def test_malformed_basic_headers_are_refused(client, authorization):
    response = hostile.send(client, "get", COMPANY, headers={"Authorization": authorization})
    assert response.status_code in (401, 403)
    hostile.assert_error_body(response)


def test_basic_auth_with_a_unicode_password_is_served(client):
    user = UserFactory(username="rtl")
    user.set_password("\u200fكلمة-سر-١٢٣📞")
    user.save()
    response = client.get(COMPANY, headers=basic("rtl:\u200fكلمة-سر-١٢٣📞".encode()))
    assert response.status_code == 200
    assert response.json()["slug"] == user.company.slug


def test_user_of_an_inactive_company_is_refused(client):
    user = UserFactory(company=CompanyFactory(active=False))
    client.force_login(user)
    response = hostile.assert_rejects_cleanly(client, "get", COMPANY, status=403)
    assert "active company" in response.json()["detail"]


@pytest.mark.parametrize("text", hostile.HOSTILE_STRINGS.values(), ids=hostile.HOSTILE_STRINGS.keys())
def test_hostile_company_names_come_back_as_stored(client, text):
    user = UserFactory(company=CompanyFactory(name=text[:200].replace("\x00", "")))
    client.force_login(user)
    assert client.get(COMPANY).json()["name"] == user.company.name


def test_unknown_query_parameters_and_accept_headers(client, company_user):
    client.force_login(company_user)
    hostile.assert_answers_cleanly(client, "get", f"{COMPANY}?limit=null&offset=-1&%00=%E2%80%AE")
    response = client.get(COMPANY, headers={"Accept": "application/xml"})
    assert response.status_code == 406
    hostile.assert_error_body(response)
