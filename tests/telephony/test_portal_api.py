import csv
import datetime as dt
import io

import openpyxl
import pytest
from django.urls import reverse

from telephony.models import CallRecord
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def record(company, uniqueid, disposition="ANSWERED", callee="5551001", caller="5550000"):
    return CallRecord.objects.create(
        source="ami:1",
        uniqueid=uniqueid,
        company=company,
        disposition=disposition,
        started_at=T0,
        caller=caller,
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
    with django_assert_num_queries(7):  # session, user, company, its permissions (2), count, page
        response = client.get(url)
    assert len(response.context["page"]) == 50
    busy = client.get(url, {"disposition": "BUSY"}).content.decode()
    assert "5552002" in busy and "5551001" not in busy
    csv = client.get(url, {"format": "csv", "disposition": "BUSY"})
    assert csv["Content-Type"] == "text/csv"
    lines = csv.content.decode().strip().splitlines()
    assert lines[0].startswith("company,uniqueid,linkedid,app")
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


FORMULAS = ["=HYPERLINK(1)", "@SUM(1+9)*cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0", "-1+1", "\t=1", "\r=1"]


def test_csv_export_quotes_formulas_and_keeps_the_rest(client, company_user):
    for n, formula in enumerate(FORMULAS):
        record(company_user.company, f"f{n}", caller=formula, callee=formula)
    record(company_user.company, "plain", caller='Zoë, "boss"\r\nline 2', callee="5551001")
    client.force_login(company_user)
    url = reverse("telephony:calls", args=[company_user.company.slug])
    response = client.get(url, {"format": "csv"})
    assert response["Content-Disposition"] == f'attachment; filename="calls-{company_user.company.slug}.csv"'
    rows = {r["uniqueid"]: r for r in csv.DictReader(io.StringIO(response.content.decode()))}
    for n, formula in enumerate(FORMULAS):
        assert rows[f"f{n}"]["caller"] == rows[f"f{n}"]["callee"] == "'" + formula
    assert rows["plain"]["caller"] == 'Zoë, "boss"\r\nline 2'
    assert rows["plain"]["callee"] == "5551001"
    assert rows["plain"]["duration"] == "0"


def admin_export(client, file_format):
    """The admin's export form, as a person submits it: one format, every field ticked."""
    from telephony.resources import CallRecordResource

    fields = {f"callrecordresource_{name}": "on" for name in CallRecordResource._meta.fields}
    return client.post(
        "/admin/telephony/callrecord/export/", {"format": file_format, "resource": "0", **fields}
    )


def test_admin_exports_offer_spreadsheets_and_quote_formulas(client, staff_user, company):
    record(company, "f1", caller="@SUM(1+9)*cmd|' /C calc'!A0", callee="=HYPERLINK(1)")
    client.force_login(staff_user)
    form = client.get("/admin/telephony/callrecord/export/").content.decode()
    assert ">csv<" in form and ">tsv<" in form and ">xlsx<" in form and ">json<" not in form

    csv_rows = list(csv.DictReader(io.StringIO(admin_export(client, "0").content.decode())))
    assert (csv_rows[0]["caller"], csv_rows[0]["callee"]) == (
        "'@SUM(1+9)*cmd|' /C calc'!A0",
        "'=HYPERLINK(1)",
    )
    tsv_rows = list(csv.DictReader(io.StringIO(admin_export(client, "1").content.decode()), delimiter="\t"))
    assert tsv_rows[0]["callee"] == "'=HYPERLINK(1)"

    sheet = openpyxl.load_workbook(io.BytesIO(admin_export(client, "2").content)).active
    cells = dict(zip([c.value for c in sheet[1]], sheet[2], strict=True))
    assert cells["callee"].data_type == "s" and cells["callee"].value == "'=HYPERLINK(1)"
    assert cells["duration"].value == 0


def test_admin_xlsx_export_survives_control_characters(client, staff_user, company):
    record(company, "ctl", caller="555\x070000")
    client.force_login(staff_user)
    sheet = openpyxl.load_workbook(io.BytesIO(admin_export(client, "2").content)).active
    assert sheet[2][5].value == "555\ufffd0000"


def test_call_records_are_read_only_in_the_admin(client, staff_user, company):
    kept = record(company, "evidence", callee="5551001")
    client.force_login(staff_user)
    base = "/admin/telephony/callrecord/"
    changelist = client.get(base).content.decode()
    assert "delete_selected" not in changelist

    response = client.post(base, {"action": "delete_selected", "_selected_action": [kept.pk], "post": "yes"})
    assert response.status_code in (200, 302)
    assert client.get(f"{base}{kept.pk}/delete/").status_code == 403
    assert client.post(f"{base}{kept.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{base}add/").status_code == 403

    detail = client.get(f"{base}{kept.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert client.post(f"{base}{kept.pk}/change/", {"callee": "0000"}).status_code == 403
    kept.refresh_from_db()
    assert kept.callee == "5551001"


def test_number_search_matches_caller_or_callee(client, company_user, other_company_user):
    record(company_user.company, "out", callee="5551001")
    record(company_user.company, "in", caller="0612345678", callee="200")
    record(company_user.company, "else", callee="5552002")
    record(company_user.company, "spaced", caller="+33 1 23 45", callee="300")
    record(other_company_user.company, "theirs", callee="5551001")
    client.force_login(company_user)
    url = reverse("telephony:calls", args=[company_user.company.slug])

    def found(number, **more):
        response = client.get(url, {"number": number, **more})
        assert response.status_code == 200
        return sorted(r.uniqueid for r in response.context["page"])

    assert found("5551001") == ["out"]
    assert found("555-1001") == ["out"]  # typed with separators
    assert found("06 12 34") == ["in"]
    assert found(" - ") == []  # only separators: not "match everything"
    assert found("1001", format="") == ["out"]
    assert found("+33 1 23") == ["spaced"]  # as stored, separators and all
    rows = list(
        csv.DictReader(io.StringIO(client.get(url, {"number": "1001", "format": "csv"}).content.decode()))
    )
    assert [r["uniqueid"] for r in rows] == ["out"]


@pytest.mark.parametrize(
    "hostile",
    ["%", "_", "555_001", "' OR '1'='1", '"><script>alert(1)</script>', "5551001'; DROP TABLE x;--", "\\"],
)
def test_hostile_number_search_finds_nothing_and_is_shown_inert(client, company_user, hostile):
    record(company_user.company, "out", callee="5551001")
    client.force_login(company_user)
    response = client.get(reverse("telephony:calls", args=[company_user.company.slug]), {"number": hostile})
    assert response.status_code == 200
    assert list(response.context["page"]) == []
    body = response.content.decode()
    assert "<script>alert" not in body and "No calls match" in body
    assert CallRecord.objects.filter(uniqueid="out").exists()


def test_unusable_number_search_is_a_400(client, company_user):
    client.force_login(company_user)
    url = reverse("telephony:calls", args=[company_user.company.slug])
    assert client.get(url, {"number": "5" * 81}).status_code == 400
    response = client.get(url, {"number": "555\x001001"})
    assert response.status_code == 400 and "Null characters are not allowed" in response.content.decode()


def test_list_pages_and_csv_keep_their_query_counts(client, company_user, django_assert_num_queries):
    from telephony.models import WebhookDelivery

    for n in range(3):
        record(company_user.company, f"q{n}", callee=f"555100{n}")
        WebhookDelivery.objects.create(
            company=company_user.company, event="hangup", payload={}, url="http://x.test/"
        )
    client.force_login(company_user)
    slug = company_user.company.slug
    with django_assert_num_queries(7):  # session, user, company, its permissions (2), count, page
        assert (
            len(client.get(reverse("telephony:calls", args=[slug]), {"number": "555"}).context["page"]) == 3
        )
    with django_assert_num_queries(7):
        assert len(client.get(reverse("telephony:webhooks", args=[slug])).context["page"]) == 3
    with django_assert_num_queries(4):  # session, user, company, the records with their company
        body = client.get(reverse("telephony:calls", args=[slug]), {"format": "csv"}).content.decode()
    assert body.count(company_user.company.name) == 3
