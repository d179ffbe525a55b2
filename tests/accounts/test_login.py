"""Failed-login throttling on every login path, and what a refused login tells the user."""

import base64
import time

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.urls import reverse

from config import env

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"
LOCKED = "Too many failed logins for this account or address; try again in 15 minutes."


def portal_login(client, username, password, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def admin_login(client, username, password):
    return client.post(reverse("admin:login"), {"username": username, "password": password})


def basic(username, password):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def is_logged_in(client):
    return "_auth_user_id" in client.session


def test_portal_refuses_even_the_right_password_after_ten_failures(client, company_user):
    for attempt in range(9):
        response = portal_login(client, company_user.username, f"wrong-{attempt}")
        assert "Please enter a correct username and password" in response.content.decode()
    response = portal_login(client, company_user.username, "wrong-9")
    assert LOCKED in response.content.decode()

    response = portal_login(client, company_user.username, PASSWORD)
    assert response.status_code == 200
    assert LOCKED in response.content.decode()
    assert not is_logged_in(client)


def test_admin_refuses_even_the_right_password_after_ten_failures(client, staff_user):
    for attempt in range(10):
        admin_login(client, staff_user.username, f"wrong-{attempt}")
    response = admin_login(client, staff_user.username, PASSWORD)
    assert response.status_code == 200
    assert LOCKED in response.content.decode()
    assert not is_logged_in(client)


def test_api_basic_auth_answers_429_once_locked(client, company_user):
    for attempt in range(9):
        response = client.get("/api/company/", **basic(company_user.username, f"wrong-{attempt}"))
        assert response.status_code == 401
    assert client.get("/api/company/", **basic(company_user.username, "wrong-9")).status_code == 429

    response = client.get("/api/company/", **basic(company_user.username, PASSWORD))
    assert response.status_code == 429
    assert LOCKED in response.json()["detail"]
    assert 890 <= int(response["Retry-After"]) <= 900


def test_one_lock_holds_on_every_login_path(client, company_user):
    for attempt in range(10):
        client.get("/api/company/", **basic(company_user.username, f"wrong-{attempt}"))
    assert LOCKED in portal_login(client, company_user.username, PASSWORD).content.decode()
    assert not is_logged_in(client)


def test_an_address_is_locked_after_failures_on_many_accounts(client, company_user, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    for name in ["ann", "bob", "cid"]:
        portal_login(client, name, "guess")
    assert LOCKED in portal_login(client, company_user.username, PASSWORD).content.decode()

    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert portal_login(elsewhere, company_user.username, PASSWORD).status_code == 302


def test_ipv6_neighbours_in_one_64_share_a_lock(company_user, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    portal_login(Client(REMOTE_ADDR="2001:db8::1"), "ann", "guess")
    portal_login(Client(REMOTE_ADDR="2001:db8::2"), "bob", "guess")
    response = portal_login(Client(REMOTE_ADDR="2001:db8::3"), company_user.username, PASSWORD)
    assert LOCKED in response.content.decode()
    response = portal_login(Client(REMOTE_ADDR="2001:db8:0:1::3"), company_user.username, PASSWORD)
    assert response.status_code == 302


def test_behind_a_proxy_the_forwarded_client_is_throttled_not_the_proxy(company_user, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    settings.TRUSTED_PROXY_HOPS = 1
    proxy = Client(REMOTE_ADDR="10.0.0.1")
    for name in ["ann", "bob"]:
        portal_login(proxy, name, "guess", HTTP_X_FORWARDED_FOR="spoofed, 198.51.100.9")
    response = portal_login(proxy, company_user.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert LOCKED in response.content.decode()
    response = portal_login(proxy, company_user.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.4")
    assert response.status_code == 302


def test_account_lock_ignores_case(client, company_user):
    for attempt in range(10):
        portal_login(client, company_user.username.upper(), f"wrong-{attempt}")
    assert LOCKED in portal_login(client, company_user.username, PASSWORD).content.decode()


def test_a_successful_login_clears_the_account_count(client, company_user):
    for _ in range(2):
        for attempt in range(9):
            portal_login(client, company_user.username, f"wrong-{attempt}")
        assert portal_login(client, company_user.username, PASSWORD).status_code == 302
        client.logout()


def test_the_lock_ends(client, company_user, settings):
    settings.LOGIN_LOCKOUT_SECONDS = 1
    settings.LOGIN_FAILURES_PER_ACCOUNT = 1
    response = portal_login(client, company_user.username, "wrong")
    assert "try again in 1 minute." in response.content.decode()
    time.sleep(1.1)  # cache timeouts are wall-clock seconds
    assert portal_login(client, company_user.username, PASSWORD).status_code == 302


class CountingHasher(MD5PasswordHasher):
    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


def test_a_locked_login_runs_no_password_hasher(client, company_user, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    company_user.set_password(PASSWORD)
    company_user.save()
    for attempt in range(10):
        portal_login(client, company_user.username, f"wrong-{attempt}")
    CountingHasher.calls = 0
    portal_login(client, company_user.username, PASSWORD)
    client.get("/api/company/", **basic(company_user.username, PASSWORD))
    assert CountingHasher.calls == 0


def test_nul_in_the_username_is_explained(client, staff_user):
    response = portal_login(client, "a\x00b", PASSWORD)
    assert "Null characters are not allowed." in response.content.decode()
    response = admin_login(client, "a\x00b", PASSWORD)
    assert "Null characters are not allowed." in response.content.decode()


def test_nul_in_a_basic_auth_username_is_a_failed_login(client):
    assert client.get("/api/company/", **basic("a\x00b", PASSWORD)).status_code == 401


def test_api_without_credentials_asks_for_basic_auth(client):
    response = client.get("/api/company/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="api"'


def test_api_with_bad_credentials_asks_again(client, company_user):
    response = client.get("/api/company/", **basic(company_user.username, "wrong"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="api"'
    assert response.json()["detail"] == "Invalid username/password."


def test_api_basic_auth_with_the_right_password(client, company_user):
    response = client.get("/api/company/", **basic(company_user.username, PASSWORD))
    assert response.json()["slug"] == company_user.company.slug


def test_api_session_auth_still_works_and_checks_csrf(company_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(company_user)
    assert client.get("/api/company/").status_code == 200
    response = client.post("/api/company/")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_schema_publishes_basic_auth(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["basicAuth"] == {"type": "http", "scheme": "basic"}


def test_cache_is_shared_files_or_redis(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert env.env_cache("REDIS_URL", tmp_path) == {
        "BACKEND": "config.cache.FileCache",
        "LOCATION": str(tmp_path),
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")
    config = env.env_cache("REDIS_URL", tmp_path)
    assert config["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert config["LOCATION"] == "redis://cache.example:6379/0"
    monkeypatch.setenv("REDIS_URL", "memcached://x")
    with pytest.raises(env.EnvError, match="REDIS_URL"):
        env.env_cache("REDIS_URL", tmp_path)
