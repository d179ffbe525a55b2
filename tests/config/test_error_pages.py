"""Error pages as a person meets them in production (DEBUG off): one heading, what happened, the way home."""

import re

import pytest
from django.test import RequestFactory
from django.views import defaults
from django.views.csrf import csrf_failure

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]


def assert_error_page(body, heading):
    assert re.findall(r"<h1>(.*?)</h1>", body) == [heading]
    assert "HTTP 404" not in body and "Not Found</h1>" not in body
    assert 'href="/portal/"' in body and "Go to your home page" in body


def test_missing_page_is_a_plain_404(client, production, company_user):
    for user in (None, company_user):
        if user:
            client.force_login(user)
        response = client.get("/portal/no/such/page/")
        assert response.status_code == 404
        assert_error_page(response.content.decode(), "Page not found")


def test_another_company_slug_gets_the_same_404(client, production, company_user, other_company_user):
    client.force_login(company_user)
    response = client.get(f"/portal/{other_company_user.company.slug}/")
    assert response.status_code == 404
    assert_error_page(response.content.decode(), "Page not found")


@pytest.mark.parametrize(
    ("view", "status", "heading"),
    [
        (defaults.server_error, 500, "Something went wrong"),
        (lambda r: defaults.permission_denied(r, Exception()), 403, "Not allowed"),
        (lambda r: defaults.bad_request(r, Exception()), 400, "Bad request"),
        (lambda r: csrf_failure(r, reason="CSRF cookie not set."), 403, "Form expired"),
    ],
)
def test_other_errors_have_their_own_page(production, view, status, heading):
    response = view(RequestFactory().get("/"))
    assert response.status_code == status
    assert_error_page(response.content.decode(), heading)
