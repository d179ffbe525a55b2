"""Invoices issued at the same moment (PostgreSQL: SQLite locks the whole database, so nothing races
there): the counter row locked while a number is taken, never max() + 1. Each rival issue runs in
another thread, on its own connection, while the first holds its number and prints its PDF."""

import datetime as dt

import pytest
from django.db import connection

from click2call.models import Invoice, InvoiceCounter
from click2call.services import invoices
from click2call.services.invoices import InvoiceRefused
from tests.click2call.factories import CampaignFactory
from tests.click2call.invoicing import completed, issue
from tests.factories import CompanyFactory
from tests.races import Rival

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")


def rival_while_printing(monkeypatch, action) -> Rival:
    """`action` run in another thread when the first issue prints its PDF (its number taken, its
    transaction open); the rival's own issue prints unhooked."""
    real = invoices.invoice_pdf_render
    rival = Rival(monkeypatch, invoices, "invoice_pdf_render", action)
    hooked, calls = invoices.invoice_pdf_render, []

    def once(**kwargs):
        calls.append(1)
        return (hooked if len(calls) == 1 else real)(**kwargs)

    monkeypatch.setattr(invoices, "invoice_pdf_render", once)
    return rival


def with_calls():
    company = CompanyFactory(time_zone="UTC")
    completed(CampaignFactory(company=company), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    return company


def test_two_companies_issued_at_once_get_consecutive_numbers(issuer, monkeypatch):
    issue(with_calls(), issuer=issuer)  # the year's counter row exists: only its lock orders the rivals
    first, second = with_calls(), with_calls()
    rival = rival_while_printing(monkeypatch, lambda: issue(second, issuer=issuer))

    issued = issue(first, issuer=issuer)

    rival.done()
    assert rival.error is None, rival.error
    assert (issued.number, rival.result.number) == ("INV2026-00002", "INV2026-00003")
    assert InvoiceCounter.objects.get(issuer=issuer, year=2026).last == 3


def test_one_company_issued_twice_at_once_gets_one_invoice_and_no_gap(issuer, monkeypatch):
    company = with_calls()
    rival = rival_while_printing(monkeypatch, lambda: issue(company, issuer=issuer))

    issued = issue(company, issuer=issuer)

    rival.done()
    assert isinstance(rival.error, InvoiceRefused) and "already" in rival.error.messages[0]
    assert list(Invoice.objects.values_list("number", flat=True)) == [issued.number] == ["INV2026-00001"]
    monkeypatch.undo()
    assert issue(with_calls(), issuer=issuer).number == "INV2026-00002"
