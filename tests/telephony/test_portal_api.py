import datetime as dt

import pytest
from django.urls import reverse

from telephony.models import CallRecord
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def record(company, uniqueid, disposition="ANSWERED", callee="5551001"):
    return CallRecord.objects.create(
        source="ami:1",
        uniqueid=uniqueid,
        company=company,
        disposition=disposition,
        started_at=T0,
        caller="5550000",
        callee=callee,
        app="click2call",
    )


def test_call_list_and_detail_are_the_company_own(client, company_user, other_company_user):
    mine = record(company_user.company, "mine")
    record(other_company_user.company, "theirs", callee="5559999")
    slug = company_user.company.slug
    assert_other_company_gets_404(
        client, reverse("telephony:calls", args=[slug]), owner=company_user, outsider=other_company_user
    )
    assert_other_company_gets_404(
        client,
        reverse("telephony:call", args=[slug, mine.pk]),
        owner=company_user,
        outsider=other_company_user,
    )
    client.force_login(company_user)
    body = client.get(reverse("telephony:calls", args=[slug])).content.decode()
    assert "5551001" in body and "5559999" not in body


def test_another_company_record_under_own_slug_is_404(client, company_user, other_company_user):
    theirs = record(other_company_user.company, "theirs")
    client.force_login(company_user)
    assert (
        client.get(reverse("telephony:call", args=[company_user.company.slug, theirs.pk])).status_code == 404
    )


def test_call_list_filters_pages_and_exports(client, company_user, django_assert_num_queries):
    for n in range(60):
        record(company_user.company, f"a{n}")
    record(company_user.company, "busy-1", disposition="BUSY", callee="5552002")
    client.force_login(company_user)
    url = reverse("telephony:calls", args=[company_user.company.slug])
    with django_assert_num_queries(5):  # session, user, company, count, page
        response = client.get(url)
    assert len(response.context["page"]) == 50
    busy = client.get(url, {"disposition": "BUSY"}).content.decode()
    assert "5552002" in busy and "5551001" not in busy
    csv = client.get(url, {"format": "csv", "disposition": "BUSY"})
    assert csv["Content-Type"] == "text/csv"
    lines = csv.content.decode().strip().splitlines()
    assert lines[0].startswith("uniqueid,linkedid,company")
    assert len(lines) == 2 and "busy-1" in lines[1]


def test_api_lists_and_shows_own_records_only(client, company_user, other_company_user):
    mine = record(company_user.company, "mine")
    theirs = record(other_company_user.company, "theirs")
    assert_other_company_gets_404(
        client, f"/api/telephony/calls/{mine.pk}/", owner=company_user, outsider=other_company_user
    )
    client.force_login(company_user)
    listed = client.get("/api/telephony/calls/").json()
    assert [r["uniqueid"] for r in listed["results"]] == ["mine"]
    assert client.get(f"/api/telephony/calls/{theirs.pk}/").status_code == 404


def test_admin_lists_and_exports_records(client, staff_user, company):
    record(company, "adm-1")
    client.force_login(staff_user)
    assert client.get("/admin/telephony/callrecord/").status_code == 200
    response = client.post("/admin/telephony/callrecord/export/", {"format": "0", "resource": "0"})
    assert response.status_code == 200


def test_admin_never_shows_the_ami_secret(client, staff_user):
    from tests.telephony.factories import PbxServerFactory

    server = PbxServerFactory(ami_secret="s3cret-never-shown")
    client.force_login(staff_user)
    for url in ("/admin/telephony/pbxserver/", f"/admin/telephony/pbxserver/{server.pk}/change/"):
        assert b"s3cret-never-shown" not in client.get(url).content
    assert "s3cret" not in repr(server)


def test_api_webhook_deliveries_are_the_company_own(client, company_user, other_company_user):
    from telephony.models import WebhookDelivery

    for user in (company_user, other_company_user):
        WebhookDelivery.objects.create(
            company=user.company, event="hangup", payload={"who": user.username}, url="http://127.0.0.1:9/x"
        )
    client.force_login(company_user)
    listed = client.get("/api/telephony/webhook-deliveries/").json()["results"]
    assert [d["payload"]["who"] for d in listed] == [company_user.username]


def test_bad_date_filter_is_a_400_not_a_crash(client, company_user):
    client.force_login(company_user)
    url = reverse("telephony:calls", args=[company_user.company.slug])
    response = client.get(url, {"start": "2024-02-30"})
    assert response.status_code == 400
    assert "Enter a valid date" in response.content.decode()
    assert client.get(url, {"start": "2026-11-01", "end": "2026-11-30"}).status_code == 200


def test_legs_of_another_company_stay_hidden(client, company_user, other_company_user):
    mine = record(company_user.company, "mine")
    leg = record(other_company_user.company, "their-leg", callee="5559999")
    leg.parent = mine
    leg.save()
    client.force_login(company_user)
    body = client.get(reverse("telephony:call", args=[company_user.company.slug, mine.pk])).content.decode()
    assert "5559999" not in body


def test_csv_export_escapes_formulas(client, company_user):
    record(company_user.company, "f1", callee="=HYPERLINK(1)")
    client.force_login(company_user)
    url = reverse("telephony:calls", args=[company_user.company.slug])
    body = client.get(url, {"format": "csv"}).content.decode()
    assert ",=HYPERLINK" not in body
