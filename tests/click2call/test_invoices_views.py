"""Invoices in the portal (the company's own only: another company's user gets 404) and in the
admin (read only, the PDF, credit notes, staff's on-demand runs with their progress)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from click2call import tasks
from click2call.models import Invoice, InvoiceRun
from click2call.services.invoices import credit_note_issue, invoice_issue
from tests.click2call.factories import CampaignFactory
from tests.click2call.invoicing import DECEMBER_2, NOVEMBER, completed
from tests.factories import UserFactory
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db
# The session and its user, the company, the page's count, the user's permissions (the menu, two) and
# the invoices, credit notes with their invoices joined: the same for any number of them.
QUERIES = 7


@pytest.fixture
def invoice(issuer, billed_company):
    completed(
        CampaignFactory(company=billed_company, price_per_completed=Decimal("2")),
        3,
        dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
    )
    return invoice_issue(company=billed_company, period_start=NOVEMBER, now=DECEMBER_2)


def portal(name, company, *args):
    return reverse(f"click2call:{name}", args=[company.slug, *args])


# The portal


def test_the_portal_lists_the_company_s_invoices_only(client, invoice, issuer, django_assert_num_queries):
    other = UserFactory().company
    completed(CampaignFactory(company=other), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    invoice_issue(company=other, period_start=NOVEMBER, now=DECEMBER_2)
    credit_note_issue(invoice=invoice, net=Decimal("1"), reason="a test call", now=DECEMBER_2)
    client.force_login(UserFactory(company=invoice.company))
    client.get(portal("invoices", invoice.company))  # the session's first read is not the page's

    with django_assert_num_queries(QUERIES):
        body = client.get(portal("invoices", invoice.company)).content.decode()

    assert "INV2026-00001" in body and "7.20 EUR" in body and "credit note on INV2026-00001" in body
    assert "INV2026-00002" not in body  # the other company's
    assert portal("invoice-pdf", invoice.company, invoice.pk) in body


def test_the_portal_s_pdf_is_the_invoice_s(client, invoice):
    client.force_login(UserFactory(company=invoice.company))

    response = client.get(portal("invoice-pdf", invoice.company, invoice.pk))

    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="INV2026-00001.pdf"'
    assert response.content == bytes(invoice.pdf)


def test_tenancy_of_the_invoice_pages(client, invoice):
    owner = UserFactory(company=invoice.company)
    assert_other_company_gets_404(client, portal("invoices", invoice.company), owner=owner)
    assert_other_company_gets_404(client, portal("invoice-pdf", invoice.company, invoice.pk), owner=owner)
    # Another company's invoice under the user's own slug: 404 too.
    outsider = UserFactory()
    client.force_login(outsider)
    assert client.get(portal("invoice-pdf", outsider.company, invoice.pk)).status_code == 404


def test_hostile_ids_and_methods(client, invoice):
    client.force_login(UserFactory(company=invoice.company))
    assert client.get(portal("invoice-pdf", invoice.company, 10**12)).status_code == 404
    assert client.post(portal("invoices", invoice.company)).status_code == 405
    assert client.get(portal("invoices", invoice.company), {"page": "'; drop"}).status_code == 200


# The admin


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_the_admin_lists_and_shows_invoices_read_only(admin_client, invoice):
    changelist = reverse("admin:click2call_invoice_changelist")
    assert "INV2026-00001" in admin_client.get(changelist, {"q": "INV2026"}).content.decode()
    page = admin_client.get(reverse("admin:click2call_invoice_change", args=[invoice.pk]))
    assert page.status_code == 200 and "Issue a credit note on it" in page.content.decode()
    admin_client.post(reverse("admin:click2call_invoice_change", args=[invoice.pk]), {"net": "0"})
    admin_client.post(reverse("admin:click2call_invoice_delete", args=[invoice.pk]), {"post": "yes"})
    assert admin_client.get(reverse("admin:click2call_invoice_add")).status_code == 403
    invoice.refresh_from_db()
    assert invoice.net == Decimal("6.00")


def test_the_admin_s_pdf_is_for_staff(client, admin_client, invoice):
    url = reverse("admin:click2call_invoice_pdf", args=[invoice.pk])
    response = admin_client.get(url)
    assert response.status_code == 200 and response.content == bytes(invoice.pdf)
    client.force_login(UserFactory(company=invoice.company))  # a company user is no staff
    assert client.get(url).status_code == 302


def test_a_credit_note_from_the_admin_and_one_too_large_refused(admin_client, invoice):
    url = reverse("admin:click2call_invoice_credit", args=[invoice.pk])
    assert "6.00 EUR of it not yet credited" in admin_client.get(url).content.decode()

    refused = admin_client.post(url, {"net": "6.50", "reason": "too much"})
    assert refused.status_code == 400
    assert "exceeds what is left of invoice INV2026-00001: 6.00 EUR" in refused.content.decode()
    assert admin_client.post(url, {"net": "abc", "reason": "x"}).status_code == 400

    response = admin_client.post(url, {"net": "1.50", "reason": "a test call"})
    note = Invoice.objects.get(kind=Invoice.Kind.CREDIT_NOTE)
    assert response.status_code == 302 and (note.credited, note.net, note.gross) == (
        invoice,
        Decimal("1.50"),
        Decimal("1.80"),
    )


def test_staff_issue_an_invoice_on_demand_and_follow_its_progress(
    admin_client,
    issuer,
    billed_company,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    queued = []
    monkeypatch.setattr(tasks.invoice_run, "delay", lambda run_id: queued.append(run_id))
    completed(CampaignFactory(company=billed_company), 2, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:click2call_invoicerun_add"),
            {"company": billed_company.pk, "period_start": "2026-11-14"},
        )

    run = InvoiceRun.objects.get()
    assert response.status_code == 302 and queued == [run.pk]
    assert response["Location"] == reverse("admin:click2call_invoicerun_change", args=[run.pk])
    page = admin_client.get(reverse("admin:click2call_invoicerun_change", args=[run.pk])).content.decode()
    assert "Waiting for a worker" in page and 'http-equiv="refresh"' in page  # follows the job by itself
    tasks.invoice_run(run.pk)
    page = admin_client.get(reverse("admin:click2call_invoicerun_change", args=[run.pk])).content.decode()
    assert "Issued" in page and "INV2026-00001" in page and "refresh" not in page
    listing = admin_client.get(reverse("admin:click2call_invoicerun_changelist")).content.decode()
    assert "Issued" in listing


def test_a_staff_run_with_no_calls_says_why(admin_client, issuer, billed_company, monkeypatch):
    monkeypatch.setattr(tasks.invoice_run, "delay", lambda run_id: None)
    admin_client.post(
        reverse("admin:click2call_invoicerun_add"),
        {"company": billed_company.pk, "period_start": "2026-10-01"},
    )
    run = InvoiceRun.objects.get()
    tasks.invoice_run(run.pk)
    page = admin_client.get(reverse("admin:click2call_invoicerun_change", args=[run.pk])).content.decode()
    assert "Refused, nothing issued" in page and "no completed click2call in October 2026" in page


def test_the_issuer_admin(admin_client, issuer, invoice):
    assert admin_client.get(reverse("admin:click2call_issuer_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:click2call_issuer_delete", args=[issuer.pk])).status_code == 403


def test_a_staff_run_with_a_wrong_month_or_company_is_a_form_error(admin_client, billed_company):
    url = reverse("admin:click2call_invoicerun_add")
    for data in [
        {"company": billed_company.pk, "period_start": "2026-13-01"},
        {"company": billed_company.pk, "period_start": "'; drop table"},
        {"company": 10**9, "period_start": "2026-11-01"},
        {},
    ]:
        response = admin_client.post(url, data)
        assert response.status_code == 200 and "errorlist" in response.content.decode(), data
    assert not InvoiceRun.objects.exists()
