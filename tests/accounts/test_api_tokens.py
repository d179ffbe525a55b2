"""Per-user API tokens: `Authorization: Bearer <key>` acts as the user, without the password hasher.

Made, listed and revoked in the portal (the key shown once, only its HMAC kept); tenancy is the user's.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken
from telephony.services import push as push_services
from tests import hostile
from tests.factories import CompanyFactory, UserFactory
from tests.telephony.factories import CallRecordFactory
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

COMPANY = "/api/company/"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def make_token(user, name="CRM sync"):
    return services.api_token_create(user=user, name=name)


class RefusingHasher(MD5PasswordHasher):
    """Fails any test that checks a password: a token request must never reach the hasher."""

    def verify(self, password, encoded):
        raise AssertionError("a password hasher ran")


# -- the token, made ------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_only_its_hmac_is_kept(company_user):
    token, key = make_token(company_user)
    assert key.startswith("cct_") and len(key) == 47
    assert token.key_hint == key[:10]
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert key not in {str(value) for value in row.values()}
    assert len(row["key_digest"]) == 64 and row["key_digest"] != key
    # Two tokens never share a key.
    assert make_token(company_user)[1] != key


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "x" * 101,
        "bell\x07",
        "escape\x1b[31m",
        "ev\u202elive",
        "line\nbreak",
        "zero\u200bwidth",
        "nul\x00",
        "private\ue000use",  # the rule every app shares (config.validators), not one of its own
    ],
    ids=repr,
)
def test_a_name_a_person_cannot_read_is_refused(company_user, name):
    with pytest.raises(ValidationError):
        make_token(company_user, name=name)
    assert not ApiToken.objects.exists()


def test_a_unicode_name_is_kept_as_typed(company_user):
    token, _ = make_token(company_user, name="  Synchro CRM – été 📞 ")
    token.refresh_from_db()
    assert token.name == "Synchro CRM – été 📞"


def test_a_name_written_with_joiners_is_kept(company_user):
    # Persian writes some words with a zero-width non-joiner: the shared rule keeps it.
    token, _ = make_token(company_user, name="\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645")
    token.refresh_from_db()
    assert "\u200c" in token.name


def test_staff_and_inactive_users_get_no_token(staff_user, company_user):
    company_user.is_active = False
    company_user.save()
    for user in (staff_user, company_user):
        with pytest.raises(ValidationError):
            make_token(user)


def test_a_user_has_at_most_twenty_active_tokens(company_user):
    tokens = [make_token(company_user, name=f"t{n}")[0] for n in range(services.API_TOKENS_PER_USER)]
    with pytest.raises(ValidationError, match="revoke one first"):
        make_token(company_user)
    services.api_token_revoke(user=company_user, token_id=tokens[0].pk)
    make_token(company_user)


# -- the token, used ------------------------------------------------------------------------------


def test_a_bearer_token_acts_as_its_user_without_the_password_hasher(client, company_user, settings):
    _, key = make_token(company_user)
    settings.PASSWORD_HASHERS = [f"{__name__}.RefusingHasher"]
    response = client.get(COMPANY, headers=bearer(key))
    assert response.status_code == 200
    assert response.json()["slug"] == company_user.company.slug


def test_the_lookup_is_one_query_and_last_use_is_written_once_a_minute(
    client, company_user, django_assert_num_queries
):
    token, key = make_token(company_user)
    assert token.last_used_at is None
    with django_assert_num_queries(2):  # the token with its user and company; its last use
        assert client.get(COMPANY, headers=bearer(key)).status_code == 200
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None
    with django_assert_num_queries(1):
        assert client.get(COMPANY, headers=bearer(key)).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == first_use
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first_use - timedelta(minutes=2))
    client.get(COMPANY, headers=bearer(key))
    token.refresh_from_db()
    assert token.last_used_at > first_use - timedelta(minutes=1)


def test_a_revoked_token_is_refused_with_401(client, company_user):
    token, key = make_token(company_user)
    services.api_token_revoke(user=company_user, token_id=token.pk)
    response = client.get(COMPANY, headers=bearer(key))
    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "detail": "Unknown or revoked API token."}
    token.refresh_from_db()
    assert token.revoked_at is not None and not token.active


def test_an_inactive_user_is_refused_and_an_inactive_company_forbidden(client, company_user):
    _, key = make_token(company_user)
    company_user.company.active = False
    company_user.company.save()
    response = client.get(COMPANY, headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    company_user.is_active = False
    company_user.save()
    response = client.get(COMPANY, headers=bearer(key))
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_token_sees_only_its_users_company(client, company_user):
    _, key = make_token(company_user)
    theirs = CallRecordFactory(company=CompanyFactory())
    ours = CallRecordFactory(company=company_user.company)
    assert client.get(f"/api/telephony/calls/{ours.pk}/", headers=bearer(key)).status_code == 200
    response = client.get(f"/api/telephony/calls/{theirs.pk}/", headers=bearer(key))
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found."}
    listed = client.get("/api/telephony/calls/", headers=bearer(key)).json()["results"]
    assert [row["id"] for row in listed] == [ours.pk]


def test_a_write_with_a_token_needs_no_csrf_token(company_user):
    _, key = make_token(company_user)
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/telephony/push-tokens/", headers=bearer(key))
    assert response.status_code == 201


def test_a_token_made_under_a_former_secret_key_works_while_it_is_a_fallback(client, company_user, settings):
    _, key = make_token(company_user)
    former = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-of-at-least-32-characters"
    assert client.get(COMPANY, headers=bearer(key)).status_code == 401
    settings.SECRET_KEY_FALLBACKS = [former]
    assert client.get(COMPANY, headers=bearer(key)).status_code == 200


def test_basic_auth_still_works(client, company_user):
    import base64

    credentials = base64.b64encode(f"{company_user.username}:pass-word-123".encode()).decode()
    response = client.get(COMPANY, headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 200


# -- hostile headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer cct_" + "a" * 42,
        "Bearer cct_" + "a" * 44,
        "Bearer xxx_" + "a" * 43,
        "Bearer cct_" + "a" * 42 + "\x00",
        "Bearer cct_" + "é" * 43,
        "Bearer cct_" + "a" * 10_000,
        "Bearer cct_" + "a" * 43,  # well formed, no such token
        "BEARER cct_" + "b" * 43,
    ],
    ids=lambda value: repr(value[:30]),
)
def test_a_malformed_or_unknown_bearer_token_is_a_401_saying_why(client, company_user, authorization):
    make_token(company_user)
    response = hostile.send(client, "get", COMPANY, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    hostile.assert_error_body(response)


def test_push_tokens_and_api_tokens_are_not_each_other(client, company_user):
    """A push key is a company's, for /api/telephony/events/ only (`Token`); an API key is a user's
    (`Bearer`)."""
    push = push_services.push_token_create(company=company_user.company)
    _, key = make_token(company_user)
    assert client.get(COMPANY, headers={"Authorization": f"Token {push.key}"}).status_code == 401
    assert client.get(COMPANY, headers={"Authorization": f"Token {key}"}).status_code == 401
    assert client.get(COMPANY, headers=bearer(push.key)).status_code == 401
    event = {"event": "ringing", "sessionid": "s-1", "eventTime": str(int(timezone.now().timestamp()))}
    events = "/api/telephony/events/"
    refused = client.post(events, event, content_type="application/json", headers=bearer(key))
    assert refused.status_code == 401
    taken = client.post(
        events, event, content_type="application/json", headers={"Authorization": f"Token {push.key}"}
    )
    assert taken.status_code == 202


# -- the portal page ------------------------------------------------------------------------------


def tokens_url(user):
    return reverse("portal:api-tokens", args=[user.company.slug])


def test_the_portal_makes_a_token_and_shows_its_key_once(client, company_user):
    client.force_login(company_user)
    response = client.post(tokens_url(company_user), {"name": "CRM sync"})
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(user=company_user)
    body = response.content.decode()
    key = body.split('<code id="new-key" class="secret">')[1].split("</code>")[0]
    assert services.api_token_authenticate(key=key) == token
    again = client.get(tokens_url(company_user)).content.decode()
    assert key not in again and token.key_hint in again and "CRM sync" in again


def test_the_portal_refuses_a_bad_name_with_a_message(client, company_user):
    client.force_login(company_user)
    response = client.post(tokens_url(company_user), {"name": "ev\u202elive"})
    assert response.status_code == 400
    assert "Invisible or control characters are not allowed here (found U+202E" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_portal_lists_only_the_users_own_tokens(client, company_user, django_assert_num_queries):
    make_token(company_user, name="mine")
    make_token(UserFactory(company=company_user.company), name="a colleague's")
    make_token(UserFactory(), name="another company's")
    client.force_login(company_user)
    with django_assert_num_queries(6):  # session, user, company, its permissions (2), the list
        body = client.get(tokens_url(company_user)).content.decode()
    assert "mine" in body and "colleague" not in body and "another company" not in body


def test_the_token_page_is_only_for_its_own_company(client, company_user):
    assert_other_company_gets_404(client, tokens_url(company_user), owner=company_user)


def test_revoking_is_only_for_the_tokens_own_user(client, company_user):
    token, key = make_token(company_user)
    url = reverse("portal:api-token-revoke", args=[company_user.company.slug, token.pk])
    colleague = UserFactory(company=company_user.company)
    client.force_login(colleague)
    assert client.post(url).status_code == 404
    assert client.get(COMPANY, headers=bearer(key)).status_code == 200
    assert_other_company_gets_404(client, url, owner=company_user, method="post")
    token.refresh_from_db()
    assert not token.active
    client.logout()
    assert client.get(COMPANY, headers=bearer(key)).status_code == 401


# -- the schema -----------------------------------------------------------------------------------


def test_the_schema_declares_bearer_tokens_on_every_company_operation(client):
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    operation = schema["paths"]["/api/company/"]["get"]
    assert {"bearerAuth": []} in operation["security"] and {"basicAuth": []} in operation["security"]
    assert schema["paths"]["/api/telephony/events/"]["post"]["security"] == [{"pushToken": []}]


def test_staff_see_tokens_in_the_admin_never_their_keys_and_delete_one_to_refuse_it(
    client, staff_user, company_user
):
    token, key = make_token(company_user)
    client.force_login(staff_user)
    listing = client.get(reverse("admin:accounts_apitoken_changelist")).content.decode()
    assert "CRM sync" in listing and token.key_hint in listing and key not in listing
    assert client.get(reverse("admin:accounts_apitoken_add")).status_code == 403
    change = client.get(reverse("admin:accounts_apitoken_change", args=[token.pk])).content.decode()
    assert key not in change and token.key_digest not in change
    client.post(reverse("admin:accounts_apitoken_delete", args=[token.pk]), {"post": "yes"})
    client.logout()
    assert client.get(COMPANY, headers=bearer(key)).status_code == 401
