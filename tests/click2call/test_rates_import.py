"""A carrier's rate table into a tariff: CSV or XLSX, in bulk, all or nothing, row errors named."""

from decimal import Decimal

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from click2call.models import Rate
from click2call.resources import RateResource
from tests.click2call.factories import RateFactory, TariffFactory
from tests.hostile import HOSTILE_STRINGS
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db


@pytest.fixture
def tariff(company):
    return TariffFactory(company=company)


def upload(client, tariff, content: bytes, name="rates.csv"):
    url = reverse("click2call:tariff-import", args=[tariff.company.slug, tariff.pk])
    return client.post(url, {"file": SimpleUploadedFile(name, content)})


def csv_of(rows, header="prefix,destination,price"):
    return ("\n".join([header, *rows]) + "\n").encode()


def test_csv_adds_new_prefixes_and_changes_existing_ones(client, company_user, tariff):
    RateFactory(tariff=tariff, prefix="33", destination="France", price="0.01")
    RateFactory(tariff=TariffFactory(), prefix="44", destination="UK elsewhere", price="9")
    client.force_login(company_user)
    body = csv_of(["33,France fixed,0.02", '+44 7,UK mobile,"0,05"', "336,France mobile,0.03"])
    response = upload(client, tariff, body)
    assert response.status_code == 302
    rates = {rate.prefix: (rate.destination, rate.price) for rate in tariff.rates.all()}
    assert rates == {
        "33": ("France fixed", Decimal("0.02")),
        "447": ("UK mobile", Decimal("0.05")),
        "336": ("France mobile", Decimal("0.03")),
    }
    messages = client.get(response["Location"]).content.decode()
    assert "2 new rates, 1 changed" in messages


def test_xlsx_is_imported(client, company_user, tariff):
    dataset = tablib.Dataset(headers=["Prefix", "Destination", "Price"])
    dataset.append([33612, "France - Orange", 0.0123])
    client.force_login(company_user)
    response = upload(client, tariff, dataset.export("xlsx"), name="rates.xlsx")
    assert response.status_code == 302
    rate = tariff.rates.get()
    assert (rate.prefix, rate.destination, rate.price) == ("33612", "France - Orange", Decimal("0.01230"))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("33a,France,0.1", "not a prefix"),
        (",France,0.1", "not a prefix"),
        ("1234567890123456,Long,0.1", "not a prefix"),
        ("33,France,-0.1", "not a price"),
        ("33,France,abc", "not a price"),
        ("33,France,NaN", "not a price"),
        ("33,France,1e9", "not a price"),
        ("33,,0.1", "destination"),
        ("44,UK,0.1", "twice in the file"),
    ],
)
def test_a_bad_row_imports_nothing_and_is_named(client, company_user, tariff, row, message):
    RateFactory(tariff=tariff, prefix="1", destination="USA", price="0.01")
    client.force_login(company_user)
    response = upload(client, tariff, csv_of(["44,UK,0.2", "49,Germany,0.3", row]))
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was imported" in body
    assert "row 3" in body and message in body
    assert list(tariff.rates.values_list("prefix", "price")) == [("1", Decimal("0.01000"))]


def test_missing_columns_are_named(client, company_user, tariff):
    client.force_login(company_user)
    response = upload(client, tariff, csv_of(["33,0.1"], header="prefix,cost"))
    assert response.status_code == 400
    assert "missing: destination, price" in response.content.decode()


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"\xff\xfe\x00garbage", "rates.csv"),
        (b"PK\x03\x04 not really a zip", "rates.xlsx"),
        (b"", "rates.csv"),
        (b"prefix,destination,price\n", "rates.exe"),
    ],
)
def test_unreadable_files_are_form_errors(client, company_user, tariff, content, name):
    client.force_login(company_user)
    response = upload(client, tariff, content, name=name)
    assert response.status_code == 400
    assert not tariff.rates.exists()


@pytest.mark.parametrize("name", HOSTILE_STRINGS)
def test_hostile_destinations_are_stored_or_refused(client, company_user, tariff, name):
    client.force_login(company_user)
    dataset = tablib.Dataset(headers=["prefix", "destination", "price"])
    dataset.append(["33", HOSTILE_STRINGS[name], "0.1"])
    response = upload(client, tariff, dataset.export("csv").encode())
    assert response.status_code in (302, 400)


def test_export_escapes_formulas_and_reimports(client, company_user, tariff):
    RateFactory(tariff=tariff, prefix="33", destination="=cmd|' /C calc'!A0", price="0.01")
    client.force_login(company_user)
    response = client.get(reverse("click2call:tariff-export", args=[tariff.company.slug, tariff.pk]))
    text = response.content.decode()
    assert "'=cmd" in text and "33," in text


def test_import_is_bulk_not_a_query_per_row(tariff, django_assert_max_num_queries):
    RateFactory(tariff=tariff, prefix="1", destination="USA", price="0.01")
    dataset = tablib.Dataset(headers=["prefix", "destination", "price"])
    for n in range(5000):
        dataset.append([str(10_000 + n), f"Destination {n}", "0.01"])
    dataset.append(["1", "USA and Canada", "0.02"])
    # Not one per row: SQLite's limit on parameters splits each batch into INSERTs of some 250 rows.
    with django_assert_max_num_queries(60):
        result = RateResource(tariff=tariff).import_data(
            dataset, dry_run=False, use_transactions=True, rollback_on_validation_errors=True
        )
    assert not result.has_errors() and not result.has_validation_errors()
    assert tariff.rates.count() == 5001
    assert Rate.objects.get(tariff=tariff, prefix="1").destination == "USA and Canada"


def test_import_into_another_company_tariff_is_404(client, company_user, tariff):
    assert_other_company_gets_404(
        client,
        reverse("click2call:tariff-export", args=[tariff.company.slug, tariff.pk]),
        owner=company_user,
    )
    other = TariffFactory()
    client.force_login(company_user)
    url = reverse("click2call:tariff-import", args=[tariff.company.slug, other.pk])
    response = client.post(url, {"file": SimpleUploadedFile("r.csv", csv_of(["33,France,0.1"]))})
    assert response.status_code == 404
    assert not other.rates.exists()
