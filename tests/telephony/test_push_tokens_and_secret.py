"""A company manages its own push tokens and webhook signing secret, from the portal and the API."""

import hashlib
import hmac
import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Company
from telephony.models import PushToken
from telephony.services import push as push_services
from telephony.services import webhooks
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

EVENTS = "/api/telephony/events/"


def can_push(client, key):
    response = client.post(
        EVENTS,
        {"event": "ringing", "sessionid": "s", "eventTime": str(int(time.time()))},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    return response.status_code != 401


def test_portal_creates_a_push_token_and_shows_its_key_once(client, company_user):
    client.force_login(company_user)
    url = reverse("telephony:push-tokens", args=[company_user.company.slug])
    response = client.post(url)
    token = PushToken.objects.get()
    assert token.company == company_user.company
    assert token.key in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")
    listed = client.get(url).content.decode()
    assert token.key not in listed
    assert token.key_hint in listed
    assert can_push(Client(), token.key)


def test_portal_revokes_a_push_token(client, company_user):
    token = push_services.push_token_create(company=company_user.company)
    client.force_login(company_user)
    url = reverse("telephony:push-token-revoke", args=[company_user.company.slug, token.pk])
    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    assert "is revoked" in response.content.decode()
    token.refresh_from_db()
    assert not token.active
    assert not can_push(Client(), token.key)


def test_portal_token_pages_are_the_company_own(client, company_user, other_company_user):
    slug = company_user.company.slug
    token = push_services.push_token_create(company=company_user.company)
    list_url = reverse("telephony:push-tokens", args=[slug])
    assert_other_company_gets_404(client, list_url, owner=company_user, outsider=other_company_user)
    assert_other_company_gets_404(
        client, list_url, owner=company_user, outsider=other_company_user, method="post"
    )
    revoke_url = reverse("telephony:push-token-revoke", args=[slug, token.pk])
    assert_other_company_gets_404(
        client, revoke_url, owner=company_user, outsider=other_company_user, method="post"
    )
    # Nor through the outsider's own pages: another company's token is not there.
    theirs = push_services.push_token_create(company=other_company_user.company)
    client.force_login(company_user)
    assert client.post(reverse("telephony:push-token-revoke", args=[slug, theirs.pk])).status_code == 404
    assert PushToken.objects.get(pk=theirs.pk).active


def test_portal_shows_the_secret_masked_and_once_when_rotated(client, company_user):
    company = company_user.company
    old = company.webhook_secret
    client.force_login(company_user)
    url = reverse("telephony:webhook-secret", args=[company.slug])
    page = client.get(url).content.decode()
    assert old not in page
    assert old[:4] in page
    response = client.post(url)
    new = Company.objects.get(pk=company.pk).webhook_secret
    assert new != old
    assert new in response.content.decode()
    assert new not in client.get(url).content.decode()


def test_portal_secret_page_is_the_company_own(client, company_user, other_company_user):
    url = reverse("telephony:webhook-secret", args=[company_user.company.slug])
    assert_other_company_gets_404(client, url, owner=company_user, outsider=other_company_user)
    before = Company.objects.get(pk=company_user.company.pk).webhook_secret
    client.force_login(other_company_user)
    assert client.post(url).status_code == 404
    assert Company.objects.get(pk=company_user.company.pk).webhook_secret == before


@pytest.mark.parametrize(
    "name", ["telephony:push-tokens", "telephony:webhook-secret", "telephony:push-token-revoke"]
)
def test_portal_state_changes_need_the_csrf_token(company_user, name):
    token = push_services.push_token_create(company=company_user.company)
    secret = company_user.company.webhook_secret
    args = [company_user.company.slug] + ([token.pk] if name.endswith("revoke") else [])
    client = Client(enforce_csrf_checks=True)
    client.force_login(company_user)
    assert client.post(reverse(name, args=args)).status_code == 403
    assert PushToken.objects.filter(active=True).count() == 1
    assert Company.objects.get(pk=company_user.company.pk).webhook_secret == secret


def test_api_creates_lists_and_revokes_push_tokens(client, company_user, other_company_user):
    push_services.push_token_create(company=other_company_user.company)
    client.force_login(company_user)
    created = client.post("/api/telephony/push-tokens/")
    assert created.status_code == 201
    key = created.json()["key"]
    assert PushToken.objects.get(key=key).company == company_user.company
    listed = client.get("/api/telephony/push-tokens/").json()["results"]
    assert [t["id"] for t in listed] == [created.json()["id"]]
    assert "key" not in listed[0]
    assert listed[0]["key_hint"] == key[:6] + "…"
    assert can_push(Client(), key)
    revoked = client.post(f"/api/telephony/push-tokens/{created.json()['id']}/revoke/")
    assert (revoked.status_code, revoked.json()["active"]) == (200, False)
    assert not can_push(Client(), key)


def test_api_revoke_is_the_company_own(client, company_user, other_company_user):
    token = push_services.push_token_create(company=company_user.company)
    url = f"/api/telephony/push-tokens/{token.pk}/revoke/"
    assert_other_company_gets_404(client, url, owner=company_user, outsider=other_company_user, method="post")


def test_api_secret_is_masked_then_rotated_once_and_signs_from_then_on(client, company_user):
    company = company_user.company
    old = company.webhook_secret
    client.force_login(company_user)
    shown = client.get("/api/telephony/webhook-secret/").json()
    assert shown == {"secret_hint": old[:4] + "…"}
    rotated = client.post("/api/telephony/webhook-secret/rotate/").json()
    company.refresh_from_db()
    assert rotated["secret"] == company.webhook_secret != old
    assert "secret" not in client.get("/api/telephony/webhook-secret/").json()
    body = webhooks.webhook_body({"event": "ringing"})
    expected = "sha256=" + hmac.new(rotated["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert webhooks.webhook_signature(company.webhook_secret, body) == expected


def test_api_state_changes_need_the_csrf_token_with_a_session(company_user):
    secret = company_user.company.webhook_secret
    client = Client(enforce_csrf_checks=True)
    client.force_login(company_user)
    assert client.post("/api/telephony/push-tokens/").status_code == 403
    assert client.post("/api/telephony/webhook-secret/rotate/").status_code == 403
    assert not PushToken.objects.exists()
    assert Company.objects.get(pk=company_user.company.pk).webhook_secret == secret


def test_api_token_and_secret_endpoints_refuse_anonymous_and_staff(client, staff_user):
    for url in ("/api/telephony/push-tokens/", "/api/telephony/webhook-secret/"):
        response = client.get(url)
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
    client.force_login(staff_user)
    assert client.post("/api/telephony/webhook-secret/rotate/").status_code == 403
