"""A carrier's rate table into a tariff: CSV or XLSX, a Celery job that checks every row first and
then writes in batches, all or nothing for any fault of the file, row errors named as the
spreadsheet numbers its rows."""

import datetime as dt
import io
import threading
import time
from decimal import Decimal

import openpyxl
import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from click2call import resources, tasks
from click2call.models import Rate, RateImport, Tariff
from click2call.services import rate_imports
from config.validators import validate_plain_text
from tests.click2call.factories import RateFactory, TariffFactory
from tests.hostile import HOSTILE_STRINGS
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

HIDDEN = "destination: Invisible or control characters are not allowed here (found U+"


@pytest.fixture
def tariff(company):
    return TariffFactory(company=company)


def upload(client, tariff, content: bytes, name="rates.csv"):
    """The file sent from the tariff's page, then its job run as the worker runs it; the answer is
    the job's page, where the browser was sent."""
    url = reverse("click2call:tariff-import", args=[tariff.company.slug, tariff.pk])
    response = client.post(url, {"file": SimpleUploadedFile(name, content)})
    if response.status_code != 302:
        return response
    job = RateImport.objects.get(tariff=tariff, status=RateImport.Status.QUEUED)
    assert response["Location"] == job_url(job)
    tasks.rate_import_run(job.pk)
    return client.get(response["Location"])


def job_url(job):
    return reverse("click2call:tariff-import-detail", args=[job.tariff.company.slug, job.tariff.pk, job.pk])


def csv_of(rows, header="prefix,destination,price"):
    return ("\n".join([header, *rows]) + "\n").encode()


def test_csv_adds_new_prefixes_and_changes_existing_ones(client, company_user, tariff):
    RateFactory(tariff=tariff, prefix="33", destination="France", price="0.01")
    RateFactory(tariff=TariffFactory(), prefix="44", destination="UK elsewhere", price="9")
    client.force_login(company_user)
    body = csv_of(["33,France fixed,0.02", '+44 7,UK mobile,"0,05"', "336,France mobile,0.03"])
    response = upload(client, tariff, body)
    assert response.status_code == 200
    rates = {rate.prefix: (rate.destination, rate.price) for rate in tariff.rates.all()}
    assert rates == {
        "33": ("France fixed", Decimal("0.02")),
        "447": ("UK mobile", Decimal("0.05")),
        "336": ("France mobile", Decimal("0.03")),
    }
    page = response.content.decode()
    assert "Imported" in page and "3 rates in the file: 2 new, 1 changed" in page
    assert 'http-equiv="refresh"' not in page


def test_xlsx_is_imported(client, company_user, tariff):
    dataset = tablib.Dataset(headers=["Prefix", "Destination", "Price"])
    dataset.append([33612, "France - Orange", 0.0123])
    client.force_login(company_user)
    response = upload(client, tariff, dataset.export("xlsx"), name="rates.xlsx")
    assert "1 new" in response.content.decode()
    rate = tariff.rates.get()
    assert (rate.prefix, rate.destination, rate.price) == ("33612", "France - Orange", Decimal("0.01230"))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("33a,France,0.1", "prefix: “33a” is not a prefix (1 to 15 digits)."),
        (",France,0.1", "prefix: empty: the prefix is needed."),
        ("1234567890123456,Long,0.1", "prefix: “1234567890123456” is not a prefix"),
        ("33,France,-0.1", "price: “-0.1” is not a price from 0"),
        ("33,France,abc", "price: “abc” is not a price"),
        ("33,France,NaN", "price: “NaN” is not a price from 0 to 99999.99999."),
        ("33,France,1e9", "price: “1e9” is not a price from 0"),
        ("33,France,", "price: empty: the price per minute is needed."),
        ("33,,0.1", "destination: empty: a destination name is needed."),
        ("33,\u202eevil,0.1", HIDDEN + "202E"),
        # The model's rule (config.validators), which a bulk import never runs: not only Cc and Cf.
        ("33,Fr\u2028ance,0.1", HIDDEN + "2028"),
        ("33,Fr\ue000ance,0.1", HIDDEN + "E000"),
        ("44,UK,0.1", "prefix: 44 is already on row 2."),
    ],
)
def test_a_bad_row_imports_nothing_and_is_named(client, company_user, tariff, row, message):
    RateFactory(tariff=tariff, prefix="1", destination="USA", price="0.01")
    client.force_login(company_user)
    response = upload(client, tariff, csv_of(["44,UK,0.2", "49,Germany,0.3", row]))
    body = response.content.decode()
    assert "Refused, nothing changed" in body and "Nothing was imported" in body
    # The header is the spreadsheet's row 1: the bad row is its row 4.
    assert f"row 4, {message}" in body.replace("&#x27;", "'")
    assert list(tariff.rates.values_list("prefix", "price")) == [("1", Decimal("0.01000"))]


def test_a_table_beyond_the_most_rates_read_is_refused_whole(monkeypatch, client, company_user, tariff):
    # An XLSX has no row limit: one of a few MB can unzip to millions of rows. The limit, lowered here.
    monkeypatch.setattr(resources, "MAX_RATES", 3)
    dataset = tablib.Dataset(headers=["prefix", "destination", "price"])
    for prefix in (33, 34, 35, 36):
        dataset.append([prefix, "Somewhere", 0.1])
    client.force_login(company_user)
    page = upload(client, tariff, dataset.export("xlsx"), name="rates.xlsx").content.decode()
    assert "The file has more than 3 rates (row 5): split it into several files" in page
    assert not tariff.rates.exists()
    assert RateImport.objects.get().status == RateImport.Status.REFUSED


def test_a_table_of_the_most_rates_read_is_imported(monkeypatch, client, company_user, tariff):
    monkeypatch.setattr(resources, "MAX_RATES", 3)
    client.force_login(company_user)
    upload(client, tariff, csv_of(["33,France,0.1", "", "34,Spain,0.1", "35,Italy,0.1"]))
    assert tariff.rates.count() == 3


def test_missing_columns_are_named(client, company_user, tariff):
    client.force_login(company_user)
    response = upload(client, tariff, csv_of(["33,0.1"], header="prefix,cost"))
    assert "Row 1 must name the columns prefix, destination and price; missing: destination, price." in (
        response.content.decode()
    )


def test_problems_are_in_row_order_with_the_spreadsheet_numbers(client, company_user, tariff):
    # A blank line is a row of the spreadsheet too; a row with two errors lists both.
    body = csv_of(["33,France,abc", "", "34,,0.1", "x,Spain,-1", "33,France again,0.1"])
    client.force_login(company_user)
    page = upload(client, tariff, body).content.decode()
    found = [line.split("</li>")[0] for line in page.split("<li>")[1:] if line.startswith("row ")]
    assert found == [
        "row 2, price: “abc” is not a price (a number such as 0.0123).",
        "row 4, destination: empty: a destination name is needed.",
        "row 5, prefix: “x” is not a prefix (1 to 15 digits).",
        "row 5, price: “-1” is not a price from 0 to 99999.99999.",
        "row 6, prefix: 33 is already on row 2.",
    ]
    assert "Correct these 5 problems" in page


def test_a_table_wrong_everywhere_lists_the_first_problems_and_counts_them_all(client, company_user, tariff):
    client.force_login(company_user)
    page = upload(client, tariff, csv_of([f"{n},Somewhere,abc" for n in range(10, 130)])).content.decode()
    assert "row 51, price" in page and "row 52, price" not in page
    assert "… and 70 more." in page and "Correct these 120 problems" in page


def test_xlsx_cells_of_the_wrong_kind_are_said_in_words(client, company_user, tariff):
    dataset = tablib.Dataset(headers=["prefix", "destination", "price"])
    dataset.append([33, "France", dt.datetime(2026, 1, 2, 3, 4)])
    dataset.append([34, "Spain", None])
    dataset.append([35.0, "Italy", 0.5])
    client.force_login(company_user)
    page = upload(client, tariff, dataset.export("xlsx"), name="rates.xlsx").content.decode()
    assert "row 2, price: a date or a time, not a price" in page
    assert "row 3, price: empty: the price per minute is needed." in page
    assert "datetime" not in page and "None" not in page and "row 4" not in page


def test_a_binary_file_is_named_as_such(client, company_user, tariff):
    client.force_login(company_user)
    response = upload(client, tariff, b"prefix,destination,price\n\x89PNG\x00\x00\x1a", name="rates.csv")
    assert response.status_code == 400
    assert "This is not a CSV file (it holds binary data)" in response.content.decode()
    assert "correct these rows" not in response.content.decode()
    assert not RateImport.objects.exists()


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
    assert not tariff.rates.exists() and not RateImport.objects.exists()


@pytest.mark.parametrize("name", HOSTILE_STRINGS)
def test_hostile_destinations_are_stored_or_refused(client, company_user, tariff, name):
    client.force_login(company_user)
    dataset = tablib.Dataset(headers=["prefix", "destination", "price"])
    dataset.append(["33", HOSTILE_STRINGS[name], "0.1"])
    response = upload(client, tariff, dataset.export("csv").encode())
    if response.status_code == 400:  # refused at the upload: nothing queued, nothing stored
        assert not RateImport.objects.exists() and not tariff.rates.exists()
        return
    assert response.status_code == 200
    job = RateImport.objects.get(tariff=tariff)
    if job.status == RateImport.Status.DONE:  # stored as a person can read it again
        validate_plain_text(tariff.rates.get(prefix="33").destination)
    else:  # refused whole, the row named
        assert job.status == RateImport.Status.REFUSED and not tariff.rates.exists()
        assert job.problems and job.problems[0].startswith("row 2, destination:"), job.problems


def test_export_escapes_formulas_and_reimports(client, company_user, tariff):
    RateFactory(tariff=tariff, prefix="33", destination="=cmd|' /C calc'!A0", price="0.01")
    client.force_login(company_user)
    response = client.get(reverse("click2call:tariff-export", args=[tariff.company.slug, tariff.pk]))
    text = response.content.decode()
    assert "'=cmd" in text and "33," in text


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_an_export_imported_again_changes_nothing(client, company_user, tariff, file_format):
    names = {"1": "- Mobile", "2": "+44 UK", "3": "=Premium", "4": "@home", "5": "'quoted", "6": "Plain"}
    for prefix, name in names.items():
        RateFactory(tariff=tariff, prefix=prefix, destination=name, price="0.01")
    client.force_login(company_user)
    url = reverse("click2call:tariff-export", args=[tariff.company.slug, tariff.pk])
    for _ in range(2):
        exported = client.get(url, {"format": file_format}).content
        page = upload(client, tariff, exported, name=f"rates.{file_format}").content.decode()
        assert "0 new, 0 changed" in page
    assert dict(tariff.rates.values_list("prefix", "destination")) == names


def test_xlsx_export_writes_prices_as_numbers(client, company_user, tariff):
    RateFactory(tariff=tariff, prefix="33", destination="France", price="0.01234")
    client.force_login(company_user)
    url = reverse("click2call:tariff-export", args=[tariff.company.slug, tariff.pk])
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(url, {"format": "xlsx"}).content)).active
    prefix, destination, price = (cell for cell in sheet[2])
    assert price.data_type == "n" and price.value == pytest.approx(0.01234)
    assert (prefix.value, destination.value) == ("33", "France")


def big_table(rows: int, *, start=10_000) -> bytes:
    return csv_of([f"{start + n},Destination {n},0.01" for n in range(rows)])


def test_a_large_table_is_written_in_batches_with_its_progress(
    tariff, monkeypatch, django_assert_max_num_queries
):
    RateFactory(tariff=tariff, prefix="1", destination="USA", price="0.01")
    monkeypatch.setattr(rate_imports, "BATCH_ROWS", 1000)
    job = rate_imports.rate_import_start(
        tariff=tariff, file_name="big.csv", content=big_table(4500) + b"1,USA and Canada,0.02\n"
    )
    # Not one query per row: a few per batch of 1000 (SQLite's limit on parameters splits a batch's
    # upsert into INSERTs of some 250 rows).
    with django_assert_max_num_queries(60):
        tasks.rate_import_run(job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows, job.to_write, job.written) == (RateImport.Status.DONE, 4501, 4501, 4501)
    assert (job.created_count, job.changed_count, bytes(job.content)) == (4500, 1, b"")
    assert tariff.rates.count() == 4501
    assert Rate.objects.get(tariff=tariff, prefix="1").destination == "USA and Canada"


@pytest.mark.django_db(transaction=True)
def test_another_writer_gets_in_between_two_batches(monkeypatch):
    """A write of another process (the pbx process's lease, a banner POST) waits for a batch, not for
    the whole import: on SQLite the one transaction of 10^5 rows held the write lock 20 to 39 s."""
    tariff = TariffFactory()
    monkeypatch.setattr(rate_imports, "BATCH_ROWS", 1000)
    monkeypatch.setattr(tasks.rate_import_run, "delay_on_commit", lambda job_id: None)  # run below
    job = rate_imports.rate_import_start(tariff=tariff, file_name="big.csv", content=big_table(12_000))
    failures = []

    def work():
        try:
            tasks.rate_import_run(job.pk)
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not RateImport.objects.filter(pk=job.pk, written__gt=0).exists():  # its first batch
            assert worker.is_alive() and time.monotonic() < deadline, failures
            time.sleep(0.01)
        with transaction.atomic():
            Tariff.objects.filter(pk=tariff.pk).update(name="Renamed during the import")
        # In before the import's end (SQLite's busy handler found the lock free between two batches).
        job.refresh_from_db()
        assert job.status == RateImport.Status.WRITING and job.written < job.to_write
    finally:
        worker.join(120)
    assert not failures
    job.refresh_from_db()
    assert (job.status, tariff.rates.count()) == (RateImport.Status.DONE, 12_000)


@pytest.fixture
def rate_insert_fails_at():
    """A database that refuses one rate (a disk full, a lost connection): a real fault of the
    database, between two of the job's batches."""
    sqlite = connection.vendor == "sqlite"

    def install(prefix):
        with connection.cursor() as cursor:
            if sqlite:
                cursor.execute(
                    "CREATE TRIGGER refuse_rate BEFORE INSERT ON click2call_rate "
                    f"WHEN NEW.prefix = '{prefix}' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
                )
            else:
                cursor.execute(
                    "CREATE FUNCTION refuse_rate() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.prefix = '{prefix}' THEN RAISE EXCEPTION 'disk I/O error'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
                cursor.execute(
                    "CREATE TRIGGER refuse_rate BEFORE INSERT ON click2call_rate "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_rate()"
                )

    yield install
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS refuse_rate" + ("" if sqlite else " ON click2call_rate"))


def test_a_fault_between_batches_says_what_was_written_and_the_same_file_finishes_it(
    client, company_user, tariff, monkeypatch, rate_insert_fails_at
):
    monkeypatch.setattr(rate_imports, "BATCH_ROWS", 1000)
    rate_insert_fails_at("12500")  # in the third batch
    table = big_table(4000)
    job = rate_imports.rate_import_start(tariff=tariff, file_name="big.csv", content=table)
    with pytest.raises(DatabaseError):
        tasks.rate_import_run(job.pk)
    job.refresh_from_db()
    assert (job.status, job.written, tariff.rates.count()) == (RateImport.Status.FAILED, 2000, 2000)
    client.force_login(company_user)
    page = client.get(job_url(job)).content.decode()
    assert "Stopped before the end" in page
    assert "after 2000 of 4000 new or changed rates were written" in page
    assert "Send the same file again to finish" in page

    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER refuse_rate" + ("" if connection.vendor == "sqlite" else " ON click2call_rate")
        )
    again = rate_imports.rate_import_start(tariff=tariff, file_name="big.csv", content=table)
    tasks.rate_import_run(again.pk)
    again.refresh_from_db()
    assert (again.status, again.created_count, again.rows) == (RateImport.Status.DONE, 2000, 4000)
    assert tariff.rates.count() == 4000


def test_the_job_page_follows_the_progress(client, company_user, tariff):
    job = rate_imports.rate_import_start(tariff=tariff, file_name="big.csv", content=big_table(10))
    client.force_login(company_user)
    page = client.get(job_url(job)).content.decode()
    assert "Waiting for a worker" in page and 'http-equiv="refresh"' in page
    RateImport.objects.filter(pk=job.pk).update(
        status=RateImport.Status.WRITING, rows=170_000, to_write=9000, written=4000
    )
    page = client.get(job_url(job)).content.decode()
    assert "All 170,000 rows are right" in page and "4,000 of 9,000" in page
    assert 'http-equiv="refresh"' in page
    tariff_page = client.get(
        reverse("click2call:tariff", args=[tariff.company.slug, tariff.pk])
    ).content.decode()
    assert "big.csv, writing the rates" in tariff_page and job_url(job) in tariff_page


def test_one_import_at_a_time_per_tariff_and_a_stalled_one_is_let_go(client, company_user, tariff):
    first = rate_imports.rate_import_start(tariff=tariff, file_name="a.csv", content=big_table(1))
    client.force_login(company_user)
    url = reverse("click2call:tariff-import", args=[tariff.company.slug, tariff.pk])
    response = client.post(url, {"file": SimpleUploadedFile("b.csv", big_table(1))})
    assert response.status_code == 400
    assert "An import into this tariff is under way" in response.content.decode()
    # Its worker was killed: after a while the tariff takes files again.
    stalled = timezone.now() - rate_imports.STALE_AFTER - dt.timedelta(seconds=1)
    RateImport.objects.filter(pk=first.pk).update(status=RateImport.Status.WRITING, updated_at=stalled)
    assert upload(client, tariff, big_table(1)).status_code == 200
    first.refresh_from_db()
    assert first.status == RateImport.Status.FAILED
    assert tariff.rates.count() == 1


def test_a_job_is_run_once(tariff):
    job = rate_imports.rate_import_start(tariff=tariff, file_name="a.csv", content=big_table(3))
    tasks.rate_import_run(job.pk)
    Rate.objects.filter(tariff=tariff).delete()
    tasks.rate_import_run(job.pk)  # a duplicate delivery
    assert not tariff.rates.exists()


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
    assert not RateImport.objects.exists()


def test_an_import_of_another_company_is_404(client, company_user, tariff):
    job = rate_imports.rate_import_start(tariff=tariff, file_name="a.csv", content=big_table(1))
    assert_other_company_gets_404(client, job_url(job), owner=company_user)
    other_job = rate_imports.rate_import_start(tariff=TariffFactory(), file_name="b", content=big_table(1))
    client.force_login(company_user)
    # Another tariff's job under this company's own tariff.
    url = reverse("click2call:tariff-import-detail", args=[tariff.company.slug, tariff.pk, other_job.pk])
    assert client.get(url).status_code == 404
