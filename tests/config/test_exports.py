"""Exported cells never run as spreadsheet formulas, and ordinary values come back as they went in."""

import csv
import datetime as dt
import io

import openpyxl
import pytest
from import_export.formats import base_formats

from config.exports import escape_cell
from telephony.models import CallRecord
from telephony.resources import CallRecordResource

FORMULAS = [
    "=HYPERLINK(1)",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
ORDINARY = ["5551001", "33 1 23 45", 'Zoë, "the boss"', "line one\r\nline two", "李雷", "1-800"]


def unsaved(**fields):
    # Never saved: lets a numeric column hold what the model would refuse (a negative number).
    return CallRecord(
        source="ami:1",
        uniqueid=fields.pop("uniqueid", "u1"),
        started_at=dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC),
        **fields,
    )


def export_csv(records):
    body = base_formats.CSV().export_data(CallRecordResource().export(records))
    return list(csv.DictReader(io.StringIO(body)))


@pytest.mark.parametrize("formula", FORMULAS)
def test_each_formula_starter_is_quoted_in_caller_and_callee(formula):
    [row] = export_csv([unsaved(caller=formula, callee=formula)])
    assert row["caller"] == row["callee"] == "'" + formula


def test_ordinary_text_comes_back_unchanged():
    rows = export_csv([unsaved(uniqueid=f"u{n}", caller=v, callee=v) for n, v in enumerate(ORDINARY)])
    assert [(r["caller"], r["callee"]) for r in rows] == [(v, v) for v in ORDINARY]


def test_numbers_stay_numbers_even_negative():
    [row] = export_csv([unsaved(duration=-5, billsec=0, hangup_cause=16)])
    assert (row["duration"], row["billsec"], row["hangup_cause"]) == ("-5", "0", "16")


def test_xlsx_writes_no_formula_and_keeps_numbers():
    records = [unsaved(uniqueid="a", caller="=1+1", callee="-1", duration=-5, billsec=7)]
    body = base_formats.XLSX().export_data(CallRecordResource().export(records, force_native_type=True))
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, [c for c in sheet[2]], strict=True))
    assert row["caller"].data_type == "s" and row["caller"].value == "'=1+1"
    assert row["callee"].value == "'-1"
    assert (row["duration"].value, row["billsec"].value) == (-5, 7)


@pytest.mark.parametrize("value", [None, 0, -5, 1.5, "", "abc", "'=already"])
def test_escape_cell_leaves_everything_else_alone(value):
    assert escape_cell(value) == value


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model", ["telephony.callrecord", "click2call.rate", "tickets.tickethop", "tickets.ticketcall"]
)
def test_the_admins_export_needs_the_view_permission(client, model):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    app_label, name = model.split(".")
    staff = UserFactory(is_staff=True, company=None)
    client.force_login(staff)
    export = f"/admin/{app_label}/{name}/export/"
    assert client.get(export).status_code == 403
    view = Permission.objects.get(codename=f"view_{name}", content_type__app_label=app_label)
    staff.user_permissions.add(view)
    assert client.get(export).status_code == 200
