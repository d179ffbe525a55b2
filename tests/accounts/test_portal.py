import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from telephony.models import CallRecord, WebhookDelivery
from telephony.selectors import call_figures_for_company
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
    with django_assert_num_queries(6):  # session, user, company, its permissions (2), the list
        response = client.get(url)
    body = response.content.decode()
    assert "colleague" in body and company_user.username in body
    assert other_company_user.username not in body


def test_times_are_shown_in_the_company_time_zone_and_name_it(client, company_user):
    winter, summer = UserFactory(company=company_user.company), UserFactory(company=company_user.company)
    winter.last_login = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    summer.last_login = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
    for user in (winter, summer):
        user.save()
    client.force_login(company_user)
    body = client.get(reverse("portal:users", args=[company_user.company.slug])).content.decode()
    assert "2026-01-15 13:00:00 CET" in body and "2026-07-15 14:00:00 CEST" in body


# A time shown anywhere in the portal: date, time, zone, nothing else.
ONE_FORMAT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?:[A-Z]{3,5}|[+-]\d\d)")


def test_every_portal_page_shows_times_one_way_with_the_zone(client, company_user):
    company = company_user.company
    at = datetime(2026, 12, 2, 13, 5, 9, tzinfo=UTC)
    call = CallRecord.objects.create(
        source="ami:1", uniqueid="c1", company=company, started_at=at, answered_at=at, ended_at=at, caller="1"
    )
    delivery = WebhookDelivery.objects.create(
        company=company, event="hangup", payload={}, url="http://x.test/"
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=at)
    colleague = UserFactory(company=company)
    colleague.last_login = at
    colleague.save()
    client.force_login(company_user)
    pages = {
        "portal:users": [company.slug],
        "telephony:calls": [company.slug],
        "telephony:call": [company.slug, call.pk],
        "telephony:webhooks": [company.slug],
    }
    for name, args in pages.items():
        body = client.get(reverse(name, args=args)).content.decode()
        assert "2026-12-02 14:05:09 CET" in body, name
        assert not re.search(r"\b(a\.m\.|p\.m\.|midnight|noon)", body), name
        for time in re.findall(r"\d{4}-\d\d-\d\d[^<\"]*", body):
            assert ONE_FORMAT.fullmatch(time), f"{name}: {time!r}"


def call(company, started_at, disposition="ANSWERED", billsec=0, **more):
    return CallRecord.objects.create(
        source="ami:1",
        uniqueid=f"u{CallRecord.objects.count()}",
        company=company,
        started_at=started_at,
        disposition=disposition,
        billsec=billsec,
        duration=billsec,
        **more,
    )


def test_figures_count_the_company_day_and_month_not_utc(company, other_company_user):
    # 00:30 on 2 December in Paris is still 1 December in UTC.
    now = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    parent = call(company, datetime(2026, 12, 1, 23, 10, tzinfo=UTC), billsec=61)  # 00:10 Paris, today
    call(company, datetime(2026, 12, 1, 23, 20, tzinfo=UTC), disposition="BUSY")  # today
    leg_start = datetime(2026, 12, 1, 23, 15, tzinfo=UTC)
    call(company, leg_start, billsec=61, parent=parent, linkedid=parent.uniqueid)  # a leg: part of a call
    call(company, datetime(2026, 12, 1, 22, 50, tzinfo=UTC), billsec=30)  # 23:50 Paris on the 1st
    call(company, datetime(2026, 11, 30, 23, 30, tzinfo=UTC), billsec=30)  # 00:30 Paris on the 1st
    call(company, datetime(2026, 11, 30, 22, 30, tzinfo=UTC), billsec=600)  # 30 November in Paris
    call(other_company_user.company, datetime(2026, 12, 1, 23, 10, tzinfo=UTC), billsec=600)

    figures = call_figures_for_company(company=company, now=now)

    assert figures["day"].isoformat() == "2026-12-02"
    assert (figures["calls_today"], figures["answered_rate_today"], figures["billed_minutes_today"]) == (
        2,
        50,
        2,
    )
    assert (figures["calls_month"], figures["answered_rate_month"], figures["billed_minutes_month"]) == (
        4,
        75,
        3,
    )


def test_home_shows_todays_figures_and_a_number_search(client, company_user, django_assert_num_queries):
    now = timezone.now()
    call(company_user.company, now, billsec=90, callee="5551001")
    call(company_user.company, now, disposition="FAILED")
    call(company_user.company, now - timedelta(days=40), billsec=600)
    client.force_login(company_user)
    url = reverse("portal:home", args=[company_user.company.slug])
    # session, user, company, its permissions (2), active users, the call figures, the queues panel
    with django_assert_num_queries(8):
        response = client.get(url)
    body = response.content.decode()
    for figure, shown in [
        ("calls-today", "2"),
        ("answered-rate-today", "50 %"),
        ("billed-minutes-today", "2"),
    ]:
        assert re.search(rf'data-figure="{figure}">{shown}</dd>', body), figure
    calls_url = reverse("telephony:calls", args=[company_user.company.slug])
    assert f'action="{calls_url}"' in body and 'name="number"' in body
    found = client.get(calls_url, {"number": "5551001"})
    assert [r.callee for r in found.context["page"]] == ["5551001"]


def test_home_without_calls_shows_zeros_not_a_rate(client, company_user):
    client.force_login(company_user)
    body = client.get(reverse("portal:home", args=[company_user.company.slug])).content.decode()
    assert 'data-figure="calls-today">0</dd>' in body
    assert 'data-figure="answered-rate-today">—</dd>' in body


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
