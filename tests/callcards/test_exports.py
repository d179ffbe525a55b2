"""The seed's callcard_export_report: cards and call logs to CSV and XLSX from the portal's lists,
with the list's filters, formula-safe, and never a PIN."""

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.urls import reverse

from callcards.lifecycle import Status
from callcards.models import Card, CardCall
from callcards.resources import CALL_COLUMNS, CARD_COLUMNS, CardCallResource, CardResource
from tests.callcards.factories import CardBatchFactory, CardCallFactory, CardFactory, callcard_admin
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PIN = "73920518"
FORMULAS = ["=1+1", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x","y")']


def url(name, company):
    return reverse(f"callcards:{name}", kwargs={"company_slug": company.slug})


@pytest.fixture
def logged_in(client, company):
    client.force_login(callcard_admin(company))
    return client


@pytest.fixture
def card(company):
    batch = CardBatchFactory(
        company=company, run="R1", batch="B1", initial_minutes=30, purchase_order="PO-7", printer="=cmd"
    )
    return CardFactory(
        company=company,
        batch=batch,
        pin=PIN,
        balance_minutes=25,
        name="=1+1",
        comments="-2+3",
        email="a@b.example",
    )


def csv_rows(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="callcards-')
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def xlsx_rows(response):
    assert response.status_code == 200
    assert "spreadsheetml" in response["Content-Type"]
    assert response["Content-Disposition"].endswith('.xlsx"')
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    header = [cell.value for cell in sheet[1]]
    return [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]


def test_cards_to_csv_have_every_column_and_no_pin(logged_in, company, card):
    rows = csv_rows(logged_in.get(url("cards", company), {"format": "csv"}))
    assert list(rows[0]) == CARD_COLUMNS
    [row] = rows
    assert row["card_id"] == card.card_id and row["batch"] == "R1/B1" and row["status"] == "ACTIVE"
    assert (row["balance_minutes"], row["initial_minutes"], row["purchase_order"]) == ("25", "30", "PO-7")
    body = logged_in.get(url("cards", company), {"format": "csv"}).content.decode()
    assert PIN not in body and card.pin_sealed not in body and card.pin_digest not in body
    assert "pin" not in ",".join(rows[0]).lower()


def test_a_formula_in_a_card_is_exported_escaped(logged_in, company, card):
    [row] = csv_rows(logged_in.get(url("cards", company), {"format": "csv"}))
    assert (row["name"], row["comments"], row["printer"]) == ("'=1+1", "'-2+3", "'=cmd")

    [cells] = xlsx_rows(logged_in.get(url("cards", company), {"format": "xlsx"}))
    assert cells["name"].data_type == "s" and cells["name"].value == "'=1+1"
    assert cells["comments"].value == "'-2+3"
    assert cells["balance_minutes"].value == 25  # a number stays a number


@pytest.mark.parametrize("formula", FORMULAS)
def test_every_formula_starter_is_escaped_in_both_formats(logged_in, company, formula):
    card = CardFactory(company=company, name=formula[:60])
    CardCallFactory(card=card, phone_number=formula[:40], agent=formula)
    [row] = csv_rows(logged_in.get(url("cards", company), {"format": "csv"}))
    assert row["name"] == "'" + formula[:60]
    [call] = xlsx_rows(logged_in.get(url("calls", company), {"format": "xlsx"}))
    assert call["phone_number"].value == "'" + formula[:40] and call["agent"].value == "'" + formula
    for cell in call.values():
        assert cell.data_type != "f"


def test_the_cards_export_follows_the_lists_filters(logged_in, company, card):
    held = CardFactory(company=company, status=Status.HOLD, held_from=Status.ACTIVE)
    CardFactory(pin="11112222")  # another company's
    every = csv_rows(logged_in.get(url("cards", company), {"format": "csv"}))
    assert {row["card_id"] for row in every} == {card.card_id, held.card_id}
    only_held = csv_rows(logged_in.get(url("cards", company), {"format": "csv", "status": "HOLD"}))
    assert [row["card_id"] for row in only_held] == [held.card_id]
    by_batch = xlsx_rows(logged_in.get(url("cards", company), {"format": "xlsx", "batch": card.batch_id}))
    assert [row["card_id"].value for row in by_batch] == [card.card_id]


def test_a_refused_filter_exports_nothing(logged_in, company, card):
    response = logged_in.get(url("cards", company), {"format": "csv", "card_id": "abc"})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")


def test_an_unknown_format_shows_the_page(logged_in, company, card):
    response = logged_in.get(url("cards", company), {"format": "pdf"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")


def test_the_call_log_exports_the_seeds_columns_in_the_companys_time(logged_in, company, card):
    paris = ZoneInfo("Europe/Paris")
    call = CardCallFactory(
        card=card, call_time=dt.datetime(2026, 11, 23, 23, 30, tzinfo=paris), agent="1001",
        agent_dispo="SALE", agent_talk_sec=61, phone_number="5557788", inbound_did="5550000",
    )  # fmt: skip
    CardCallFactory(card=card, call_time=dt.datetime(2026, 11, 24, 0, 30, tzinfo=paris))
    query = {"format": "csv", "start": "2026-11-23", "end": "2026-11-23"}
    rows = csv_rows(logged_in.get(url("calls", company), query))
    assert list(rows[0]) == CALL_COLUMNS
    [row] = rows
    assert row["uniqueid"] == call.uniqueid and row["card_id"] == card.card_id
    assert row["call_time"].startswith("2026-11-23 23:30")
    assert (row["agent"], row["agent_dispo"], row["agent_talk_sec"], row["agent_talk_min"]) == (
        "1001",
        "SALE",
        "61",
        "2",
    )
    assert (row["balance_minutes_start"], row["balance_minutes_end"]) == ("25", "23")

    [cells] = xlsx_rows(logged_in.get(url("calls", company), {**query, "format": "xlsx"}))
    assert cells["agent_talk_sec"].value == 61
    assert cells["call_time"].is_date and cells["call_time"].value == dt.datetime(2026, 11, 23, 23, 30)


def test_exports_are_the_companys_and_its_admins_only(client, company, card):
    CardCallFactory(card=card)
    client.force_login(UserFactory(company=company))
    for name in ("cards", "calls"):
        for fmt in ("csv", "xlsx"):
            response = client.get(url(name, company), {"format": fmt})
            assert response.status_code == 404
            assert card.card_id.encode() not in response.content
    client.force_login(callcard_admin())
    for name in ("cards", "calls"):
        response = client.get(url(name, company), {"format": "csv"})
        assert response.status_code == 404


def test_the_resources_never_list_a_pin_field():
    for resource in (CardResource(), CardCallResource()):
        names = [field.column_name for field in resource.get_export_fields()]
        assert not any("pin" in name for name in names), names
    assert {"pin_sealed", "pin_digest"} <= {field.name for field in Card._meta.fields}
    assert "uniqueid" in {field.name for field in CardCall._meta.fields}


def test_the_usage_report_exports_every_batch(logged_in, company):
    batch = CardBatchFactory(company=company, run="R1", batch="=B1", initial_minutes=10)
    used = CardFactory(company=company, batch=batch, balance_minutes=7, status=Status.USED)
    CardFactory(company=company, batch=batch, balance_minutes=10, status=Status.VOID)
    CardCallFactory(card=used, agent_talk_sec=150)
    for n in range(30):  # more than a page of the report
        CardBatchFactory(company=company, run="R2", batch=f"P{n}")
    CardFactory(pin="11112222")  # another company's batch
    rows = csv_rows(logged_in.get(url("usage", company), {"format": "csv"}))
    assert len(rows) == 31
    [row] = [row for row in rows if row["run"] == "R1"]
    assert row["batch"] == "'=B1"
    assert (row["cards"], row["minutes_sold"], row["minutes_used"], row["minutes_remaining"]) == (
        "2",
        "20",
        "3",
        "7",
    )
    assert (row["calls"], row["talk_seconds"], row["cards USED"], row["cards VOID"], row["cards ACTIVE"]) == (
        "1", "150", "1", "1", "0",
    )  # fmt: skip
    [cells] = [
        r
        for r in xlsx_rows(logged_in.get(url("usage", company), {"format": "xlsx"}))
        if r["run"].value == "R1"
    ]
    assert cells["minutes_used"].value == 3


def test_a_list_longer_than_one_download_is_refused_with_a_word(logged_in, company, monkeypatch):
    monkeypatch.setattr("callcards.views.EXPORT_MAX_ROWS", 2)
    batch = CardBatchFactory(company=company, count=3)
    CardFactory.create_batch(3, company=company, batch=batch)
    response = logged_in.get(url("cards", company), {"format": "xlsx", "status": "ACTIVE"}, follow=True)
    assert response.redirect_chain[0][0] == f"{url('cards', company)}?status=ACTIVE"
    assert "3 rows is more than one download holds (2)" in response.content.decode()
    narrowed = logged_in.get(
        url("cards", company), {"format": "csv", "card_id": Card.objects.first().card_id}
    )
    assert len(csv_rows(narrowed)) == 1
