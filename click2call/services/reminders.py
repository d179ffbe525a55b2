"""Reminders: a company is e-mailed once about a request that waits for its call back longer than
the campaign's reminder_minutes.

A request waits for the company when it failed calling the company (FAILED CALLING TO COMPANY, a
call back from the portal that did not reach the company included), or failed calling the visitor
and was never called back; its wait starts when it failed (finished_at). A request called back,
or completed, before that is not reminded of.

Writing a reminder claims the request first (a conditional update of CallRequest.reminded_at), so of
two workers one writes it; the reminder is a CallReminder row, written PENDING and sent through
config.outbox: claimed again before sending, a mail server down delays it with a growing pause and
never loses it, the error on the row.
"""

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from click2call.models import CallAttempt, CallReminder, CallRequest, Campaign
from config import outbox

logger = logging.getLogger(__name__)

Status = CallRequest.Status
CREATE_BATCH = 500  # requests a run reminds of at most; the next run takes the rest
# A reminder due longer ago than this is stale news and not sent: a reminder time set on a campaign
# with weeks of failed requests, a beat stopped for days. It also bounds what the check every minute
# reads (a week of failed requests, not all of them).
CATCH_UP = dt.timedelta(days=7)
NO_ADDRESS = "no address: the campaign has no reminder e-mail and the company no billing e-mail"
NOT_WAITING = "not sent: the request was called back or completed before the reminder went"


def _waiting(prefix: str = "") -> Q:
    """Requests that wait for the company to call back (see the module's docstring)."""
    called_back = Exists(
        CallAttempt.objects.filter(request=OuterRef(f"{prefix}pk"), kind=CallAttempt.Kind.CALLBACK)
    )
    return Q(**{f"{prefix}status": Status.FAILED_COMPANY}) | (
        Q(**{f"{prefix}status": Status.FAILED_USER}) & ~Q(called_back)
    )


def requests_awaiting_reminder(*, now: dt.datetime | None = None):
    """Requests waiting for the company past their campaign's reminder time (by less than
    CATCH_UP), not reminded of yet."""
    now = now or timezone.now()
    # Duration times an integer column has no portable SQL (SQLite refuses it): one condition per
    # reminder time in use, a handful in practice, each a range on the partial index.
    in_use = (
        Campaign.objects.filter(reminder_minutes__gt=0)
        .order_by()
        .values_list("reminder_minutes", flat=True)
        .distinct()
    )
    past_due = Q(pk__in=[])
    for minutes in in_use:
        since = now - dt.timedelta(minutes=minutes)
        past_due |= Q(
            campaign__reminder_minutes=minutes, finished_at__lte=since, finished_at__gt=since - CATCH_UP
        )
    return CallRequest.objects.filter(
        past_due,
        reminded_at__isnull=True,
        status__in=[Status.FAILED_USER, Status.FAILED_COMPANY],
        company__active=True,
    ).filter(_waiting())


def reminders_create(*, now: dt.datetime | None = None) -> int:
    """A PENDING reminder for each request due one (DROPPED, saying so, when there is no address to
    send it to); returns how many this run wrote (a rival run may have written others)."""
    now = now or timezone.now()
    due = requests_awaiting_reminder(now=now).order_by("finished_at").values_list("pk", flat=True)
    written = 0
    for pk in list(due[:CREATE_BATCH]):
        written += reminder_create(request_id=pk, now=now)
    return written


def reminder_create(*, request_id: int, now: dt.datetime) -> bool:
    """The request's reminder, if it still waits and no worker has claimed it first."""
    with transaction.atomic():
        claimed = (
            CallRequest.objects.filter(pk=request_id, reminded_at__isnull=True)
            .filter(_waiting())
            .update(reminded_at=now)
        )
        if claimed != 1:
            return False
        request = CallRequest.objects.select_related("campaign", "company").get(pk=request_id)
        to = request.campaign.reminder_email or request.company.billing_email
        CallReminder.objects.create(
            request=request,
            company=request.company,
            to=to,
            state=CallReminder.State.PENDING if to else CallReminder.State.DROPPED,
            last_error="" if to else NO_ADDRESS,
        )
    if not to:
        logger.info("no reminder of click2call request %s: %s", request_id, NO_ADDRESS)
    return True


def reminders_send_pending(*, now: dt.datetime | None = None) -> outbox.SendReport:
    """Send the PENDING reminders that are due; one whose request no longer waits (called back or
    completed meanwhile) is DROPPED instead."""
    now = now or timezone.now()
    CallReminder.objects.filter(state=CallReminder.State.PENDING).exclude(_waiting("request__")).update(
        state=CallReminder.State.DROPPED, next_try_at=None, last_error=NOT_WAITING
    )
    return outbox.outbox_send(
        rows=CallReminder.objects.select_related("request__campaign", "company"),
        message=lambda reminder: reminder_message(reminder=reminder),
        now=now,
    )


def reminder_message(*, reminder: CallReminder) -> EmailMessage:
    """What a person needs to call back: the number, the name and note, the campaign, when it was
    asked and when it failed (in the company's time zone), and a link to the call in the portal."""
    request = reminder.request
    company = reminder.company
    path = reverse("click2call:call", kwargs={"company_slug": company.slug, "pk": request.pk})
    context = {
        "request": request,
        "company": company,
        "campaign": request.campaign,
        # Shown in the company's time zone (the template's {% timezone %}).
        "asked": request.created_at,
        "failed": request.finished_at,
        "zone": company.time_zone,
        "link": settings.SITE_URL + path,
    }
    subject = f"{company.name}: call back {request.number} ({request.campaign.name})"
    return EmailMessage(
        subject=outbox.one_line(subject),
        body=render_to_string("click2call/mail/reminder.txt", context),
        to=[reminder.to],
    )
