from datetime import UTC, datetime

import pytest
from django.urls import reverse

from tests.factories import CompanyFactory, UserFactory
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db


def test_home_is_only_for_its_own_company(client, company_user):
    url = reverse("portal:home", args=[company_user.company.slug])
    assert_other_company_gets_404(client, url, owner=company_user)


def test_user_list_is_only_for_its_own_company(client, company_user):
    url = reverse("portal:users", args=[company_user.company.slug])
    assert_other_company_gets_404(client, url, owner=company_user)


def test_user_list_shows_only_own_users(client, company_user, other_company_user, django_assert_num_queries):
    UserFactory(company=company_user.company, username="colleague")
    client.force_login(company_user)
    url = reverse("portal:users", args=[company_user.company.slug])
    with django_assert_num_queries(4):  # session, user, company, the list
        response = client.get(url)
    body = response.content.decode()
    assert "colleague" in body and company_user.username in body
    assert other_company_user.username not in body


def test_times_are_shown_in_the_company_time_zone(client, company_user):
    colleague = UserFactory(company=company_user.company)
    colleague.last_login = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    colleague.save()
    client.force_login(company_user)
    response = client.get(reverse("portal:users", args=[company_user.company.slug]))
    assert "Jan. 15, 2026, 1 p.m." in response.content.decode()  # Europe/Paris is UTC+1 in winter


def test_anonymous_is_sent_to_login(client, company):
    url = reverse("portal:home", args=[company.slug])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_entry_sends_company_user_home_and_staff_to_admin(client, company_user, staff_user):
    client.force_login(company_user)
    assert client.get(reverse("portal:entry"))["Location"] == reverse(
        "portal:home", args=[company_user.company.slug]
    )
    client.force_login(staff_user)
    assert client.get(reverse("portal:entry"))["Location"] == reverse("admin:index")


def test_inactive_company_is_locked_out(client, company_user):
    company_user.company.active = False
    company_user.company.save()
    client.force_login(company_user)
    assert client.get(reverse("portal:home", args=[company_user.company.slug])).status_code == 404
    response = client.get(reverse("portal:entry"), follow=True)
    assert "belongs to no active company" in response.content.decode()


def test_login_logout_and_password_change(client):
    user = UserFactory(company=CompanyFactory(slug="acme"), username="alice")
    response = client.post(reverse("login"), {"username": "alice", "password": "pass-word-123"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:home", args=["acme"])
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "pass-word-123",
            "new_password1": "Tr1cky-new-pass",
            "new_password2": "Tr1cky-new-pass",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("Tr1cky-new-pass")
    client.post(reverse("logout"))
    assert client.get(reverse("portal:home", args=["acme"])).status_code == 302


def test_wrong_password_is_refused(client, company_user):
    response = client.post(reverse("login"), {"username": company_user.username, "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
