"""Click2call invoices: a company's COMPLETED calls of a month (its time zone) billed per campaign,
with its tax and currency, numbered without gaps per issuer and year, never changed once issued,
corrected by credit notes, printed to a PDF (read back) and mailed with it attached (Django's locmem
backend stands in for SMTP; a backend that raises for a server that is down)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from click2call import tasks
from click2call.models import CallRequest, Invoice, InvoiceLine, InvoiceRun, Issuer
from click2call.services import invoices
from click2call.services.invoices import InvoiceRefused, credit_note_issue
from tests.callcards.pdftext import pdf_text
from tests.click2call.factories import CallRequestFactory, CampaignFactory
from tests.click2call.invoicing import DECEMBER_2, DOWN, NOVEMBER, completed, issue
from tests.factories import CompanyFactory

pytestmark = pytest.mark.django_db

# Amounts, grouping, tax, currency


def test_lines_are_grouped_by_campaign_at_its_price_with_the_company_tax(issuer, billed_company):
    shop = CampaignFactory(company=billed_company, name="Shop", price_per_completed=Decimal("0.50"))
    support = CampaignFactory(company=billed_company, name="Support", price_per_completed=Decimal("1.25"))
    completed(shop, 3, dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC))
    completed(support, 2, dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC))
    CallRequestFactory(
        campaign=shop,
        status=CallRequest.Status.FAILED_USER,
        finished_at=dt.datetime(2026, 11, 10, tzinfo=dt.UTC),
    )
    CallRequestFactory(campaign=shop, status=CallRequest.Status.PENDING)
    completed(CampaignFactory(price_per_completed=Decimal("9")), 4, dt.datetime(2026, 11, 10, tzinfo=dt.UTC))

    invoice = issue(billed_company)

    lines = [(line.campaign, line.quantity, line.unit_price, line.amount) for line in invoice.lines.all()]
    assert lines == [
        (shop, 3, Decimal("0.50"), Decimal("1.50")),
        (support, 2, Decimal("1.25"), Decimal("2.50")),
    ]
    assert (invoice.calls, invoice.net, invoice.tax, invoice.gross) == (
        5,
        Decimal("4.00"),
        Decimal("0.80"),
        Decimal("4.80"),
    )
    assert (invoice.currency, invoice.tax_rate) == ("EUR", Decimal("20.00"))
    assert (invoice.period_start, invoice.period_end) == (NOVEMBER, dt.date(2026, 11, 30))
    assert invoice.number == "INV2026-00001" and invoice.issuer == issuer


def test_each_call_is_billed_at_the_price_it_completed_at(issuer, billed_company):
    """A campaign's price changed mid-month: the calls completed before keep the old price."""
    shop = CampaignFactory(company=billed_company, name="Shop", price_per_completed=Decimal("0.50"))
    completed(shop, 2, dt.datetime(2026, 11, 3, tzinfo=dt.UTC))
    shop.price_per_completed = Decimal("0.80")
    shop.save()
    completed(shop, 1, dt.datetime(2026, 11, 25, tzinfo=dt.UTC))

    invoice = issue(billed_company)

    lines = [(line.description, line.quantity, line.amount) for line in invoice.lines.all()]
    assert lines == [
        ("Click2call Shop: completed calls at 0.50", 2, Decimal("1.00")),
        ("Click2call Shop: completed calls at 0.80", 1, Decimal("0.80")),
    ]


def test_the_month_is_the_company_s_own_time_zone(issuer, billed_company):
    campaign = CampaignFactory(company=billed_company, price_per_completed=Decimal("1.00"))
    # 23:30 UTC on October 31 is November 1 in Paris; 23:30 UTC on November 30 is December 1 there.
    completed(campaign, 1, dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC))
    completed(campaign, 1, dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC))
    completed(campaign, 1, dt.datetime(2026, 11, 30, 22, 30, tzinfo=dt.UTC))

    assert issue(billed_company).calls == 2


def test_the_company_s_currency_and_rounding_of_the_tax(issuer):
    company = CompanyFactory(currency="USD", tax_rate=Decimal("7.25"), time_zone="UTC")
    campaign = CampaignFactory(company=company, price_per_completed=Decimal("0.33"))
    completed(campaign, 7, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))

    invoice = issue(company)

    # 7 x 0.33 = 2.31; 7.25 % of it is 0.167475, rounded half up to the cent.
    assert (invoice.currency, invoice.net, invoice.tax, invoice.gross) == (
        "USD",
        Decimal("2.31"),
        Decimal("0.17"),
        Decimal("2.48"),
    )


def test_a_campaign_with_no_price_is_listed_at_zero(issuer, billed_company):
    free = CampaignFactory(company=billed_company, name="Free", price_per_completed=Decimal("0"))
    paid = CampaignFactory(company=billed_company, name="Paid", price_per_completed=Decimal("2"))
    completed(free, 4, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    completed(paid, 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))

    invoice = issue(billed_company)

    line = invoice.lines.get(campaign=free)
    assert (line.quantity, line.amount) == (4, Decimal("0.00"))
    assert "no price set" in line.description
    assert invoice.net == Decimal("2.00")


def test_a_period_with_no_calls_gets_no_invoice(issuer, billed_company):
    campaign = CampaignFactory(company=billed_company, price_per_completed=Decimal("1"))
    completed(campaign, 1, dt.datetime(2026, 10, 5, tzinfo=dt.UTC))

    with pytest.raises(InvoiceRefused, match="no completed click2call in November 2026"):
        issue(billed_company)
    assert not Invoice.objects.exists()


def test_a_month_not_over_is_refused(issuer, billed_company):
    campaign = CampaignFactory(company=billed_company, price_per_completed=Decimal("1"))
    completed(campaign, 1, dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC))

    with pytest.raises(InvoiceRefused, match="December 2026 is not over"):
        issue(billed_company, month=dt.date(2026, 12, 1))


def test_no_default_issuer_is_refused(billed_company):
    completed(CampaignFactory(company=billed_company), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))

    with pytest.raises(InvoiceRefused, match="No default issuer"):
        issue(billed_company)


# Issued twice, numbering


def test_an_invoice_issued_twice_for_a_period_is_refused(issuer, billed_company):
    completed(CampaignFactory(company=billed_company), 2, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    issue(billed_company)

    with pytest.raises(InvoiceRefused, match="has an invoice for November 2026 already"):
        issue(billed_company, month=dt.date(2026, 11, 17))
    assert Invoice.objects.count() == 1


def test_the_unique_constraint_refuses_twice_when_the_check_is_passed(issuer, billed_company, monkeypatch):
    completed(CampaignFactory(company=billed_company), 2, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    issue(billed_company)
    real, checks = invoices._invoiced, []

    def checked_too_early(**kwargs):  # the first check ran before a rival committed the same invoice
        checks.append(1)
        return len(checks) > 1 and real(**kwargs)

    monkeypatch.setattr(invoices, "_invoiced", checked_too_early)

    with pytest.raises(InvoiceRefused, match="already"):
        issue(billed_company)
    assert Invoice.objects.count() == 1
    # The rolled-back issue took no number: the next one follows without a gap.
    monkeypatch.undo()
    other = CompanyFactory()
    completed(CampaignFactory(company=other), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    assert issue(other).number == "INV2026-00002"


def test_numbers_follow_without_gaps_per_issuer_and_per_year(issuer):
    second = Issuer.objects.create(name="Operator Two Ltd", address="London", number_prefix="OP2-")
    numbers = []
    for when in [
        dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 3, tzinfo=dt.UTC),
        dt.datetime(2027, 1, 2, tzinfo=dt.UTC),
    ]:
        for who in (issuer, second):
            company = CompanyFactory(time_zone="UTC")
            completed(CampaignFactory(company=company), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
            numbers.append(issue(company, issuer=who, now=when).number)
    refused = CompanyFactory(time_zone="UTC")
    with pytest.raises(InvoiceRefused):  # no calls: it takes no number
        issue(refused, issuer=issuer, now=dt.datetime(2027, 1, 3, tzinfo=dt.UTC))
    company = CompanyFactory(time_zone="UTC")
    completed(CampaignFactory(company=company), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    numbers.append(issue(company, issuer=issuer, now=dt.datetime(2027, 1, 4, tzinfo=dt.UTC)).number)

    assert numbers == [
        "INV2026-00001",
        "OP2-2026-00001",
        "INV2026-00002",
        "OP2-2026-00002",
        "INV2027-00001",
        "OP2-2027-00001",
        "INV2027-00002",
    ]


# Immutable, credit notes


def test_an_issued_invoice_is_never_changed_nor_deleted(issuer, billed_company):
    completed(CampaignFactory(company=billed_company), 2, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    invoice = issue(billed_company)
    invoice.net = Decimal("0")

    with pytest.raises(ValidationError, match="never changed"):
        invoice.save()
    with pytest.raises(ValidationError, match="never deleted"):
        invoice.delete()
    with pytest.raises(ValidationError, match="never deleted"):
        Invoice.objects.filter(pk=invoice.pk).delete()
    line = invoice.lines.get()
    line.quantity = 1
    with pytest.raises(ValidationError, match="never changed"):
        line.save()
    with pytest.raises(ValidationError, match="never deleted"):
        InvoiceLine.objects.all().delete()
    invoice.refresh_from_db()
    assert invoice.lines.get().quantity == 2


def test_credit_notes_reference_the_invoice_and_never_exceed_it(issuer, billed_company):
    completed(
        CampaignFactory(company=billed_company, price_per_completed=Decimal("5")),
        2,
        dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
    )
    invoice = issue(billed_company)  # 10.00 net
    billed_company.postal_address = "moved since"
    billed_company.save()

    note = credit_note_issue(invoice=invoice, net=Decimal("4"), reason="two calls were tests", now=DECEMBER_2)

    assert (note.kind, note.credited, note.number) == (Invoice.Kind.CREDIT_NOTE, invoice, "INV2026-00002")
    assert (note.net, note.tax, note.gross) == (Decimal("4.00"), Decimal("0.80"), Decimal("4.80"))
    assert note.company_address == invoice.company_address == "5 avenue des Clients\n69000 Lyon"
    text = pdf_text(bytes(note.pdf))
    assert "Credit note INV2026-00002" in text and "INV2026-00001" in text and "two calls were tests" in text

    with pytest.raises(InvoiceRefused, match=r"exceeds what is left of invoice INV2026-00001: 6.00 EUR"):
        credit_note_issue(invoice=invoice, net=Decimal("6.01"), reason="too much")
    assert credit_note_issue(invoice=invoice, net=Decimal("6"), reason="the rest").number == "INV2026-00003"
    with pytest.raises(InvoiceRefused, match="0.00 EUR"):
        credit_note_issue(invoice=invoice, net=Decimal("0.01"), reason="one cent more")
    with pytest.raises(InvoiceRefused, match="corrects an invoice"):
        credit_note_issue(invoice=note, net=Decimal("1"), reason="a note on a note")
    with pytest.raises(InvoiceRefused, match="above 0"):
        credit_note_issue(invoice=invoice, net=Decimal("-1"), reason="negative")
    assert Invoice.objects.count() == 3


# The PDF


def test_the_pdf_shows_both_parties_the_lines_and_the_totals(issuer, billed_company):
    completed(
        CampaignFactory(company=billed_company, name="Spring sale", price_per_completed=Decimal("0.75")),
        4,
        dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
    )

    invoice = issue(billed_company)

    pdf = bytes(invoice.pdf)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    for expected in [
        "Invoice INV2026-00001",
        "Callcenter Operator SAS",
        "1 rue du Port",
        "FR12345678901",
        "Shop SARL",
        "5 avenue des Clients",
        "FR98765432109",
        "Click2call Spring sale: completed calls",
        "3.00 EUR",
        "0.60 EUR",
        "3.60 EUR",
        "2026-11-01",
        "2026-11-30",
    ]:
        assert expected in text, expected


# E-mail


def test_the_invoice_is_mailed_to_the_billing_address_with_its_pdf(issuer, billed_company, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    completed(CampaignFactory(company=billed_company), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    invoice = issue(billed_company)

    tasks.invoice_mails()

    (message,) = mail.outbox
    assert message.to == ["accounts@shop.example"] and "INV2026-00001" in message.subject
    assert message.from_email == "billing@operator.example"
    (name, content, kind) = message.attachments[0]
    assert (name, kind) == ("INV2026-00001.pdf", "application/pdf") and content == bytes(invoice.pdf)
    invoice.refresh_from_db()
    assert invoice.mail_state == Invoice.Mail.SENT and invoice.mailed_at
    tasks.invoice_mails()
    assert len(mail.outbox) == 1


def test_a_mail_server_down_is_retried_with_backoff_and_the_failure_shown(issuer, billed_company, settings):
    completed(CampaignFactory(company=billed_company), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    invoice = issue(billed_company)
    settings.EMAIL_BACKEND = DOWN
    now = timezone.now()

    assert invoices.invoice_mails_send(now=now) == (0, 1)
    invoice.refresh_from_db()
    assert (invoice.mail_state, invoice.mail_attempts) == (Invoice.Mail.PENDING, 1)
    assert invoice.mail_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert invoice.mail_next_try_at == now + dt.timedelta(seconds=60)
    assert invoices.invoice_mails_send(now=now + dt.timedelta(seconds=30)) == (0, 0)  # within the pause
    assert invoices.invoice_mails_send(now=now + dt.timedelta(seconds=61)) == (0, 1)
    invoice.refresh_from_db()
    assert invoice.mail_next_try_at == now + dt.timedelta(seconds=61 + 120)  # the pause doubled

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert invoices.invoice_mails_send(now=now + dt.timedelta(seconds=200)) == (1, 0)
    invoice.refresh_from_db()
    assert (invoice.mail_state, invoice.mail_attempts, invoice.mail_error) == (Invoice.Mail.SENT, 3, "")
    assert len(mail.outbox) == 1


def test_a_company_with_no_billing_e_mail_is_issued_not_mailed(issuer, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    company = CompanyFactory(billing_email="")
    completed(CampaignFactory(company=company), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))

    invoice = issue(company)
    tasks.invoice_mails()

    assert invoice.mail_state == Invoice.Mail.NO_ADDRESS and not mail.outbox
    assert invoice.get_mail_state_display() == "not sent: the company has no billing e-mail"


# The monthly schedule and staff's runs


def test_the_monthly_run_invoices_last_month_of_companies_with_calls(issuer, billed_company, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    completed(CampaignFactory(company=billed_company), 2, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    quiet = CompanyFactory()
    completed(CampaignFactory(company=quiet), 1, dt.datetime(2026, 10, 5, tzinfo=dt.UTC))
    inactive = CompanyFactory(active=False)
    completed(CampaignFactory(company=inactive), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    # 10:00 UTC on December 1: November is over in Paris, not yet in Honolulu (midnight there is 10:00 UTC).
    honolulu = CompanyFactory(time_zone="Pacific/Honolulu")
    completed(CampaignFactory(company=honolulu), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    first = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)

    issued = invoices.invoices_issue_previous_month(now=first)
    assert [invoice.company for invoice in issued] == [billed_company]
    assert invoices.invoices_issue_previous_month(now=first) == []  # an hour later: nothing twice
    issued = invoices.invoices_issue_previous_month(now=first + dt.timedelta(hours=1))
    assert [(invoice.company, invoice.period_start) for invoice in issued] == [(honolulu, NOVEMBER)]


def test_the_schedule_is_declared_for_the_first_of_the_month(settings):
    entry = settings.BEAT_SCHEDULE_DEFAULTS["issue the click2call invoices of the month before"]
    assert entry["task"] == tasks.issue_monthly_invoices.name
    assert entry["schedule"].day_of_month == {1}
    assert (
        settings.BEAT_SCHEDULE_DEFAULTS["e-mail click2call invoices left pending"]["task"]
        == tasks.invoice_mails.name
    )


def test_a_staff_run_issues_the_invoice_and_shows_how_it_ended(
    issuer, billed_company, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.invoice_run, "delay", lambda run_id: sent.append(run_id))
    completed(CampaignFactory(company=billed_company), 3, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))

    with django_capture_on_commit_callbacks(execute=True):
        run = invoices.invoice_run_request(company=billed_company, period_start=dt.date(2026, 11, 20))
    assert sent == [run.pk] and run.status == InvoiceRun.Status.QUEUED and run.period_start == NOVEMBER
    tasks.invoice_run(run.pk)

    run.refresh_from_db()
    assert (run.status, run.calls, run.invoice.calls) == (InvoiceRun.Status.DONE, 3, 3)
    again = invoices.invoice_run_request(company=billed_company, period_start=NOVEMBER)
    run = invoices.invoice_run_execute(run_id=again.pk)
    assert run.status == InvoiceRun.Status.REFUSED and "already" in run.error
    assert invoices.invoice_run_execute(run_id=run.pk).status == InvoiceRun.Status.REFUSED  # done once


def test_the_monthly_task_without_a_default_issuer_logs_and_issues_nothing(billed_company, caplog):
    completed(CampaignFactory(company=billed_company), 1, dt.datetime(2026, 11, 5, tzinfo=dt.UTC))

    tasks.issue_monthly_invoices()

    assert not Invoice.objects.exists()
    assert "no monthly invoices: No default issuer" in caplog.text
