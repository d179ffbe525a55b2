"""Click2call's Celery tasks: thin, they take ids and call click2call.services.dialing."""

import logging

from celery import shared_task

from click2call.models import InvoiceRun
from click2call.services import dialing, invoices, rate_imports, reminders
from telephony.ami import AmiNotConnected

logger = logging.getLogger(__name__)


@shared_task(
    name="click2call.dial_attempt",
    acks_late=True,
    autoretry_for=(AmiNotConnected,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def dial_attempt(request_id: int):
    """The next automatic try of a request, if it is due and still open (or the claimed, unsent
    try of a task that died: it is sent with the same ChannelId, never twice)."""
    dialing.attempt_dial_next(request_id=request_id)


@shared_task(
    name="click2call.dial_callback",
    acks_late=True,
    autoretry_for=(AmiNotConnected,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def dial_callback(attempt_id: int):
    """A call back the portal asked for, claimed already."""
    dialing.attempt_originate(attempt_id=attempt_id)


@shared_task(name="click2call.dial_due")
def dial_due():
    """Give up the claims unsent for too long, then queue the tries whose task was lost (a broker
    restart, a countdown dropped, a worker gone)."""
    dialing.claims_give_up()
    for request_id in dialing.requests_due():
        dial_attempt.delay(request_id)


@shared_task(name="click2call.rate_import_run", soft_time_limit=15 * 60, time_limit=16 * 60)
def rate_import_run(rate_import_id: int):
    """A carrier's table into its tariff: checked, then written in batches (a table of 10^5 rates
    takes about a minute; the default limit of a task is shorter)."""
    rate_imports.rate_import_run(rate_import_id=rate_import_id)


@shared_task(name="click2call.send_reminders")
def send_reminders():
    """Beat's every minute: remind each company of the requests waiting for its call back past the
    campaign's reminder time, and send whatever reminder a mail server that was down left pending."""
    reminders.reminders_create()
    reminders.reminders_send_pending()


@shared_task(name="click2call.issue_monthly_invoices")
def issue_monthly_invoices():
    """Beat's 1st of the month: last month's invoices of every active company with COMPLETED calls."""
    try:
        invoices.invoices_issue_previous_month()
    except invoices.InvoiceRefused as refusal:  # no default issuer: nothing can be numbered
        logger.error("no monthly invoices: %s", refusal.messages[0])
    invoices.invoice_mails_send()


@shared_task(name="click2call.invoice_run", acks_late=True)
def invoice_run(run_id: int):
    """Staff's on-demand invoice: the run shows its progress and how it ended."""
    try:
        invoices.invoice_run_execute(run_id=run_id)
    except InvoiceRun.DoesNotExist:
        return
    invoices.invoice_mails_send()


@shared_task(name="click2call.invoice_mails")
def invoice_mails():
    """Mail the invoices due: just issued, or left by a mail server that was down."""
    invoices.invoice_mails_send()
