from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db


def inline_post(company, **new_row):
    """The Company change form as the admin posts it, with one new row in the users inline."""
    return {
        "name": company.name,
        "slug": company.slug,
        "active": "on",
        "time_zone": company.time_zone,
        "currency": company.currency,
        "billing_email": company.billing_email,
        "postal_address": "",
        "vat_id": "",
        "tax_rate": "20.00",
        "webhook_url": "",
        "webhook_secret": company.webhook_secret,
        "users-TOTAL_FORMS": "1",
        "users-INITIAL_FORMS": "0",
        "users-MIN_NUM_FORMS": "0",
        "users-MAX_NUM_FORMS": "1000",
        **{f"users-0-{field}": value for field, value in new_row.items()},
    }


def test_company_page_creates_no_user_without_a_password(client, staff_user, company):
    client.force_login(staff_user)
    url = reverse("admin:accounts_company_change", args=[company.pk])
    page = client.get(url).content.decode()
    # The inline's "Add another User" row appears only up to MAX_NUM_FORMS.
    assert 'name="users-MAX_NUM_FORMS" value="0"' in page
    add_url = f"{reverse('admin:accounts_user_add')}?company={company.pk}"
    assert f'href="{add_url}"' in page

    response = client.post(url, inline_post(company, username="nopass", email="", is_active="on"))
    assert response.status_code == 302  # the company is saved, the new row ignored
    assert not User.objects.filter(username="nopass").exists()
    company.refresh_from_db()
    assert company.tax_rate == Decimal("20.00")


def test_user_add_form_from_the_company_page_asks_a_password_for_that_company(client, staff_user, company):
    client.force_login(staff_user)
    add_url = f"{reverse('admin:accounts_user_add')}?company={company.pk}"
    assert f'<option value="{company.pk}" selected>' in client.get(add_url).content.decode()

    form = {"username": "newbie", "company": company.pk, "usable_password": "true"}
    response = client.post(add_url, {**form, "password1": "", "password2": ""})
    assert response.status_code == 200
    assert not User.objects.filter(username="newbie").exists()

    client.post(add_url, {**form, "password1": "Tr1cky-new-pass", "password2": "Tr1cky-new-pass"})
    user = User.objects.get(username="newbie")
    assert user.company == company
    assert user.check_password("Tr1cky-new-pass")


@pytest.mark.parametrize("rate", ["-1", "100.01", "abc", "1e400"])
def test_a_wrong_tax_rate_is_a_form_error(client, staff_user, company, rate):
    client.force_login(staff_user)
    url = reverse("admin:accounts_company_change", args=[company.pk])
    post = {**inline_post(company), "tax_rate": rate, "users-TOTAL_FORMS": "0"}

    response = client.post(url, post)

    assert response.status_code == 200 and "errorlist" in response.content.decode()
    company.refresh_from_db()
    assert company.tax_rate == Decimal("0.00")
