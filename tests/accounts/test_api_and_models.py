import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from accounts import services
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_api_company_is_the_users_own(client, company_user, other_company_user):
    client.force_login(company_user)
    body = client.get("/api/company/").json()
    assert body["slug"] == company_user.company.slug
    assert "webhook_secret" not in body


def test_api_refuses_staff_and_anonymous(client, staff_user):
    assert client.get("/api/company/").status_code == 401
    client.force_login(staff_user)
    assert client.get("/api/company/").status_code == 403


def test_api_schema_is_published(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/company/" in response.content


def test_staff_cannot_belong_to_a_company():
    with pytest.raises(IntegrityError):
        UserFactory(company=CompanyFactory(), is_staff=True)


def test_company_create_validates_time_zone_and_currency():
    with pytest.raises(ValidationError) as error:
        services.company_create(name="Bad Co", time_zone="Nowhere/City", currency="euro")
    assert set(error.value.message_dict) == {"time_zone", "currency"}
    company = services.company_create(name="Good Co", time_zone="America/New_York", currency="USD")
    assert company.slug == "good-co"
    assert len(company.webhook_secret) == 64


def test_company_user_create_sets_a_usable_password(company):
    user = services.company_user_create(company=company, username="carol", password="Secret-pass-1")
    assert user.check_password("Secret-pass-1")
    assert not user.is_staff


def test_company_user_create_refuses_a_weak_or_empty_password(company):
    for password in ["", "12345678", "carol"]:
        with pytest.raises(ValidationError):
            services.company_user_create(company=company, username="carol", password=password)
    assert not company.users.exists()


def test_demo_data_is_idempotent(capsys):
    from django.core.management import call_command

    call_command("demo_data")
    call_command("demo_data")
    out = capsys.readouterr().out
    assert "operator / operator-demo" in out
    from accounts.models import Company, User

    assert Company.objects.filter(slug="demo").count() == 1
    assert User.objects.get(username="demo").check_password("demo-company")
