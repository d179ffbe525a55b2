"""Invoices of click2call: each company billed once a month for its COMPLETED calls.

A month is the company's own (its time zone); a call belongs to the month it was COMPLETED in
(`finished_at`, set by dialing.attempt_finish) and is billed at its own `price`: its campaign's
`price_per_completed` frozen when it completed, so a price changed later is for later calls.
Lines are one per campaign and price. A month without a COMPLETED call gets no invoice.

Issuing takes the issuer's next number for the year under the lock of its counter row and renders
the PDF in the same transaction: an invoice, its number and its PDF exist together or not at all,
and a rolled-back issue leaves no gap. Once issued nothing changes but the e-mail delivery; a
correction is a credit note, which never exceeds what is left of its invoice.

E-mail works as callcards' alerts do: the invoice is PENDING until sent, each send claimed by a
conditional update, a mail server that is down leaves it PENDING with the error and a pause that
doubles (1 min to 1 h): delayed, never lost. A company without a billing e-mail is issued its
invoice, marked NO_ADDRESS, and nothing is sent.
"""

import datetime as dt
import logging
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Company
from click2call.models import CallRequest, Campaign, Invoice, InvoiceCounter, InvoiceLine, InvoiceRun, Issuer

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
CLAIM_SECONDS = 600
MAIL_TIMEOUT_SECONDS = 30
RETRY_FIRST_SECONDS = 60
RETRY_MAX_SECONDS = 3600
SEND_BATCH = 200


class InvoiceRefused(ValidationError):
    """Nothing was issued; the message says why."""


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def month_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first and the last day of the month `day` is in."""
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def period_bounds(*, company: Company, period_start: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The month as aware datetimes, from midnight of its first day to midnight of the next month's,
    in the company's time zone (a month across a DST change is still the whole month)."""
    first, last = month_of(period_start)
    zone = company.tzinfo
    start = dt.datetime.combine(first, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end


def completed_calls(*, company: Company, period_start: dt.date):
    """The company's requests COMPLETED in the month of period_start (its time zone)."""
    start, end = period_bounds(company=company, period_start=period_start)
    return CallRequest.objects.filter(
        company=company, status=CallRequest.Status.COMPLETED, finished_at__gte=start, finished_at__lt=end
    )


def invoice_lines_compute(*, company: Company, period_start: dt.date) -> list[InvoiceLine]:
    """The invoice's lines, unsaved: one per campaign and price with COMPLETED calls in the month
    (one aggregate query, whatever the number of calls); a campaign whose price changed in the
    month has a line per price. A call completed without a price is listed at 0.00, so the invoice
    still shows it."""
    groups = list(
        completed_calls(company=company, period_start=period_start)
        .order_by()
        .values("campaign", "price")
        .annotate(n=Count("pk"))
        .values_list("campaign", "price", "n")
    )
    campaigns = Campaign.objects.in_bulk({campaign for campaign, _, _ in groups})
    prices_per_campaign = Counter(campaign for campaign, _, _ in groups)
    lines = []
    for campaign_id, price, quantity in sorted(
        groups, key=lambda g: (campaigns[g[0]].name, g[0], g[1] or Decimal("0"))
    ):
        campaign = campaigns[campaign_id]
        price = price or Decimal("0.00")
        description = f"Click2call {campaign.name}: completed calls"
        if not price:
            description += " (no price set)"
        elif prices_per_campaign[campaign_id] > 1:
            description += f" at {price}"
        lines.append(
            InvoiceLine(
                campaign=campaign,
                description=description,
                quantity=quantity,
                unit_price=price,
                amount=_cents(price * quantity),
            )
        )
    return lines


def default_issuer() -> Issuer:
    issuer = Issuer.objects.filter(default=True).first()
    if issuer is None:
        raise InvoiceRefused("No default issuer: add the operator's details as an issuer in the admin first.")
    return issuer


def _next_number(*, issuer: Issuer, year: int) -> tuple[int, str]:
    """The issuer's next sequence in the year, the counter row locked until the caller commits."""
    InvoiceCounter.objects.get_or_create(issuer=issuer, year=year)
    counter = InvoiceCounter.objects.select_for_update().get(issuer=issuer, year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return counter.last, f"{issuer.number_prefix}{year}-{counter.last:05d}"


def _issue(*, invoice: Invoice, lines: list[InvoiceLine], now: dt.datetime) -> Invoice:
    """Number, print and save the invoice with its lines; the caller's transaction holds the counter."""
    invoice.year = timezone.localtime(now).year
    invoice.sequence, invoice.number = _next_number(issuer=invoice.issuer, year=invoice.year)
    invoice.issued_at = now
    invoice.pdf = invoice_pdf_render(invoice=invoice, lines=lines)
    invoice.save()
    for line in lines:
        line.invoice = invoice
    InvoiceLine.objects.bulk_create(lines)
    return invoice


def _copy_parties(invoice: Invoice, company: Company, issuer: Issuer) -> None:
    invoice.company_name, invoice.company_address = company.name, company.postal_address
    invoice.company_vat_id = company.vat_id
    invoice.issuer_name, invoice.issuer_address, invoice.issuer_vat_id = (
        issuer.name,
        issuer.address,
        issuer.vat_id,
    )
    invoice.mail_to = company.billing_email
    invoice.mail_state = Invoice.Mail.PENDING if company.billing_email else Invoice.Mail.NO_ADDRESS


def _invoiced(*, company: Company, period_start: dt.date) -> bool:
    invoices = Invoice.objects.filter(company=company, period_start=period_start, kind=Invoice.Kind.INVOICE)
    return invoices.exists()


def invoice_issue(
    *,
    company: Company,
    period_start: dt.date,
    issued_by=None,
    issuer: Issuer | None = None,
    now: dt.datetime | None = None,
) -> Invoice:
    """Issue the company's invoice for the month of period_start (its COMPLETED calls, its tax rate
    and currency), numbered by the issuer (the default one unless given); InvoiceRefused when the
    month has no COMPLETED call or is invoiced already. The PDF is mailed after commit."""
    now = now or timezone.now()
    period_start, period_end = month_of(period_start)
    issuer = issuer or default_issuer()
    twice = InvoiceRefused(
        f"{company.name} has an invoice for {period_start:%B %Y} already: "
        "a correction is a credit note on it."
    )
    if _invoiced(company=company, period_start=period_start):
        raise twice
    if period_bounds(company=company, period_start=period_start)[1] > now:
        # Calls completed later in the month could never be invoiced: one invoice a month.
        raise InvoiceRefused(
            f"{period_start:%B %Y} is not over in {company.time_zone}: invoice a month once it is."
        )
    lines = invoice_lines_compute(company=company, period_start=period_start)
    if not lines:
        raise InvoiceRefused(
            f"{company.name} has no completed click2call in {period_start:%B %Y}: nothing to invoice."
        )
    net = sum((line.amount for line in lines), Decimal("0.00"))
    tax = _cents(net * company.tax_rate / 100)
    invoice = Invoice(
        kind=Invoice.Kind.INVOICE,
        issuer=issuer,
        company=company,
        period_start=period_start,
        period_end=period_end,
        currency=company.currency,
        tax_rate=company.tax_rate,
        calls=sum(line.quantity for line in lines),
        net=net,
        tax=tax,
        gross=net + tax,
        issued_by=issued_by,
    )
    _copy_parties(invoice, company, issuer)
    try:
        with transaction.atomic():
            _issue(invoice=invoice, lines=lines, now=now)
    except IntegrityError:
        # Issued meanwhile by another worker: the unique constraint decided. Anything else is a fault.
        if _invoiced(company=company, period_start=period_start):
            raise twice from None
        raise
    _mail_on_commit(invoice)
    logger.info("invoice %s issued to company %s for %s", invoice.number, company.pk, period_start)
    return invoice


def credit_note_issue(*, invoice: Invoice, net: Decimal, reason: str, issued_by=None, now=None) -> Invoice:
    """A credit note of `net` (before tax, at the invoice's tax rate) on the invoice, numbered by its
    issuer; refused when it would exceed what the invoice's earlier credit notes left of it."""
    now = now or timezone.now()
    if invoice.kind != Invoice.Kind.INVOICE:
        raise InvoiceRefused("A credit note corrects an invoice, not another credit note.")
    net = _cents(Decimal(net))
    if net <= 0:
        raise InvoiceRefused("A credit note is for an amount above 0.")
    if not reason.strip():
        raise InvoiceRefused("Say why the invoice is corrected: the reason is printed on the credit note.")
    note = Invoice(
        kind=Invoice.Kind.CREDIT_NOTE,
        issuer=invoice.issuer,
        company=invoice.company,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        credited=invoice,
        reason=reason.strip(),
        currency=invoice.currency,
        tax_rate=invoice.tax_rate,
        net=net,
        tax=_cents(net * invoice.tax_rate / 100),
        issued_by=issued_by,
    )
    note.gross = note.net + note.tax
    line = InvoiceLine(
        description=f"Correction of invoice {invoice.number}: {note.reason}",
        quantity=1,
        unit_price=net,
        amount=net,
    )
    with transaction.atomic():
        # The invoice's row locked: two credit notes at once cannot both take what is left.
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        left = locked.net - credited_net(invoice=locked)
        if net > left:
            raise InvoiceRefused(
                f"A credit note of {net} {invoice.currency} exceeds what is left of invoice "
                f"{invoice.number}: "
                f"{left} {invoice.currency} before tax."
            )
        _copy_parties(note, invoice.company, invoice.issuer)
        # The credit note carries the invoice's parties as issued, not as they are now.
        note.company_name, note.company_address = invoice.company_name, invoice.company_address
        note.company_vat_id = invoice.company_vat_id
        _issue(invoice=note, lines=[line], now=now)
    _mail_on_commit(note)
    return note


def credited_net(*, invoice: Invoice) -> Decimal:
    return invoice.credit_notes.aggregate(total=Sum("net"))["total"] or Decimal("0.00")


# The PDF


def invoice_pdf_render(*, invoice: Invoice, lines: list[InvoiceLine]) -> bytes:
    html = render_to_string("click2call/invoice_pdf.html", {"invoice": invoice, "lines": lines})
    from weasyprint import HTML  # a second to import: loaded when a PDF is made, not with the admin

    return HTML(string=html).write_pdf()


# Issuing in bulk and on demand


def previous_month(*, company: Company, now: dt.datetime) -> dt.date:
    today = timezone.localtime(now, company.tzinfo).date()
    return month_of(today.replace(day=1) - dt.timedelta(days=1))[0]


def invoices_issue_previous_month(*, now: dt.datetime | None = None) -> list[Invoice]:
    """The beat's monthly run: last month's invoice (each company's own month) for every active
    company with COMPLETED calls in it and no invoice for it yet; one company's refusal or error
    does not stop the others."""
    now = now or timezone.now()
    issuer = default_issuer()
    issued = []
    for company in Company.objects.filter(active=True).order_by("pk"):
        month = previous_month(company=company, now=now)
        if _invoiced(company=company, period_start=month):
            continue
        if not completed_calls(company=company, period_start=month).exists():
            continue  # no call, no invoice
        try:
            issued.append(invoice_issue(company=company, period_start=month, issuer=issuer, now=now))
        except InvoiceRefused as refusal:
            logger.warning("no invoice for company %s for %s: %s", company.pk, month, refusal.messages[0])
    return issued


def invoice_run_request(*, company: Company, period_start: dt.date, requested_by=None) -> InvoiceRun:
    """Staff's on-demand invoice of a company's month, issued by a Celery job (its progress on the run)."""
    from click2call.tasks import invoice_run  # the tasks import this module

    run = InvoiceRun.objects.create(
        company=company, period_start=month_of(period_start)[0], requested_by=requested_by
    )
    invoice_run.delay_on_commit(run.pk)
    return run


def invoice_run_execute(*, run_id: int) -> InvoiceRun:
    """The run's invoice issued, each step shown on the run; a finished run does nothing again."""
    claimed = InvoiceRun.objects.filter(pk=run_id, status=InvoiceRun.Status.QUEUED).update(
        status=InvoiceRun.Status.COUNTING
    )
    run = InvoiceRun.objects.select_related("company", "requested_by").get(pk=run_id)
    if not claimed:
        return run
    try:
        calls = completed_calls(company=run.company, period_start=run.period_start).count()
        InvoiceRun.objects.filter(pk=run_id).update(calls=calls, status=InvoiceRun.Status.PRINTING)
        invoice = invoice_issue(
            company=run.company, period_start=run.period_start, issued_by=run.requested_by
        )
    except InvoiceRefused as refusal:
        status, error, invoice = InvoiceRun.Status.REFUSED, refusal.messages[0], None
    except Exception as exc:  # the run says it stopped; the worker's log has the traceback
        logger.exception("invoice run %s failed", run_id)
        status, error, invoice = InvoiceRun.Status.FAILED, f"{type(exc).__name__}: {exc}", None
    else:
        status, error = InvoiceRun.Status.DONE, ""
    InvoiceRun.objects.filter(pk=run_id).update(
        status=status, error=error[:300], invoice=invoice, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


# E-mail


def _mail_on_commit(invoice: Invoice) -> None:
    if invoice.mail_state == Invoice.Mail.PENDING:
        from click2call.tasks import invoice_mails  # the tasks import this module

        invoice_mails.delay_on_commit()


def _due(now: dt.datetime) -> Q:
    return Q(mail_state=Invoice.Mail.PENDING) & (
        Q(mail_next_try_at__isnull=True) | Q(mail_next_try_at__lte=now)
    )


def invoice_message(*, invoice: Invoice) -> EmailMessage:
    context = {"invoice": invoice}
    subject = f"{invoice.issuer_name}: {invoice.get_kind_display()} {invoice.number}"
    message = EmailMessage(
        subject=" ".join(subject.split()),
        body=render_to_string("click2call/mail/invoice.txt", context),
        from_email=invoice.issuer.email or settings.DEFAULT_FROM_EMAIL,
        to=[invoice.mail_to],
        reply_to=[invoice.issuer.email] if invoice.issuer.email else None,
    )
    message.attach(invoice.filename, bytes(invoice.pdf), "application/pdf")
    return message


def invoice_mails_send(*, now: dt.datetime | None = None) -> tuple[int, int]:
    """Send the invoices whose e-mail is due, each claimed first; returns (sent, failed). A failure
    leaves the invoice PENDING with its error until a later run after the pause."""
    now = now or timezone.now()
    sent = failed = 0
    due = list(
        Invoice.objects.filter(_due(now))
        .order_by("issued_at", "id")
        .values_list("pk", flat=True)[:SEND_BATCH]
    )
    if not due:
        return sent, failed
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT or MAIL_TIMEOUT_SECONDS)
    try:
        for pk in due:
            until = max(now, timezone.now()) + dt.timedelta(seconds=CLAIM_SECONDS)
            if not Invoice.objects.filter(_due(now), pk=pk).update(
                mail_next_try_at=until, mail_attempts=F("mail_attempts") + 1
            ):
                continue  # another worker sends it
            invoice = Invoice.objects.select_related("issuer").get(pk=pk)
            try:
                connection.open()
                connection.send_messages([invoice_message(invoice=invoice)])
            except Exception as exc:  # any failure leaves the invoice to be mailed, never lost
                failed += 1
                pause = min(RETRY_FIRST_SECONDS * 2 ** max(invoice.mail_attempts - 1, 0), RETRY_MAX_SECONDS)
                error = f"{type(exc).__name__}: {exc}"[:300]
                Invoice.objects.filter(pk=pk).update(
                    mail_next_try_at=now + dt.timedelta(seconds=pause), mail_error=error
                )
                logger.warning(
                    "invoice %s not mailed (attempt %s), next try in %s s: %s",
                    pk,
                    invoice.mail_attempts,
                    pause,
                    error,
                )
                break  # the server is unusable for now: the others wait for the next run
            else:
                sent += 1
                Invoice.objects.filter(pk=pk).update(
                    mail_state=Invoice.Mail.SENT,
                    mailed_at=timezone.now(),
                    mail_next_try_at=None,
                    mail_error="",
                )
    finally:
        try:
            connection.close()
        except Exception:  # closing a dead connection changes nothing sent
            logger.debug("closing the mail connection failed", exc_info=True)
    return sent, failed
