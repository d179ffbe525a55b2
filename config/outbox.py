"""Mail that a mail server down delays but never loses, nor sends twice: shared by every app that
e-mails from the beat (callcards' low-balance alerts, click2call's reminders).

Each mail is a row written PENDING before anything is sent. The row's model is a
config.models.OutboxMessage (`created_at`, `sent_at`, `attempts`, `last_error`, `next_try_at`) with
its own `state` ("pending", then "sent") and `to`. Sending claims a row with a conditional update
first (`next_try_at` moved CLAIM_SECONDS ahead, `attempts` + 1), so two workers running at once
never send it twice; a failure leaves it PENDING with the error and a pause before the next try,
doubled at each failure.
"""

import datetime as dt
import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db.models import F, Model, Q, QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)

PENDING, SENT = "pending", "sent"
# A claim outlives any send (an SMTP timeout included): past it, a worker that died mid-send has its
# mail taken up again by the next run.
CLAIM_SECONDS = 600
MAIL_TIMEOUT_SECONDS = 30
# After a failure the mail waits 1 min, then 2, 4 ... at most an hour: a server down for a while is
# not hammered, and the beat's next run after the pause sends it.
RETRY_FIRST_SECONDS = 60
RETRY_MAX_SECONDS = 3600
SEND_BATCH = 500  # mails a run sends at most; the next run sends the rest

# One message refused (its recipient, its content): the next message may still go. Any other error
# (refused connection, timeout, authentication) means the server is unusable for now: the run stops.
MESSAGE_REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    server_down: bool = False


def due(now: dt.datetime) -> Q:
    """Rows waiting to be sent whose pause (or a dead worker's claim) is over."""
    return Q(state=PENDING) & (Q(next_try_at__isnull=True) | Q(next_try_at__lte=now))


def outbox_claim(*, model: type[Model], pk: int, now: dt.datetime) -> bool:
    """The row is this worker's to send until the claim runs out: one row updated, or none when a
    rival claimed it (or sent it) first."""
    # The lease counts from the claim itself, not from the start of a long run.
    until = max(now, timezone.now()) + dt.timedelta(seconds=CLAIM_SECONDS)
    return model.objects.filter(due(now), pk=pk).update(next_try_at=until, attempts=F("attempts") + 1) == 1


def outbox_send(
    *,
    rows: QuerySet,
    message: Callable[[Model], EmailMessage],
    sent_fields: Callable[[Model], dict] | None = None,
    now: dt.datetime | None = None,
) -> SendReport:
    """Send the PENDING rows of `rows` that are due, oldest first, each claimed first; `message`
    builds a row's mail, `sent_fields` what else to store with SENT. A failure leaves the row PENDING
    with its error, to be tried again after a pause; a server down ends the run."""
    now = now or timezone.now()
    report = SendReport()
    model = rows.model
    due_pks = list(
        rows.filter(due(now)).order_by("created_at", "id").values_list("pk", flat=True)[:SEND_BATCH]
    )
    if not due_pks:
        return report
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT or MAIL_TIMEOUT_SECONDS)
    try:
        for pk in due_pks:
            if not outbox_claim(model=model, pk=pk, now=now):
                continue  # another worker sends it
            row = rows.filter(pk=pk).first()
            if row is None:
                continue  # deleted meanwhile (its card or request with it): nothing to send
            try:
                mail = message(row)
                connection.open()  # once: a no-op when open
                connection.send_messages([mail])
            except Exception as exc:  # any failure leaves the row pending, never lost
                report.failed += 1
                _failed(row, exc, now)
                if not isinstance(exc, MESSAGE_REFUSED):
                    report.server_down = True
                    break
            else:
                report.sent += 1
                model.objects.filter(pk=pk).update(
                    state=SENT,
                    sent_at=timezone.now(),
                    next_try_at=None,
                    last_error="",
                    **(sent_fields(row) if sent_fields else {}),
                )
                logger.info("%s %s sent to %s", model._meta.verbose_name, pk, row.to)
    finally:
        try:
            connection.close()
        except Exception:  # closing a dead connection changes nothing sent
            logger.debug("closing the mail connection failed", exc_info=True)
    return report


def _failed(row: Model, exc: Exception, now: dt.datetime):
    attempts = row.attempts  # counted by the claim
    pause = min(RETRY_FIRST_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)
    error = f"{type(exc).__name__}: {exc}"[:300]
    type(row).objects.filter(pk=row.pk).update(
        next_try_at=now + dt.timedelta(seconds=pause), last_error=error
    )
    logger.warning(
        "%s %s not sent, attempt %s, next try in %s s: %s",
        type(row)._meta.verbose_name,
        row.pk,
        attempts,
        pause,
        error,
    )


def one_line(text: str) -> str:
    """A subject is a header: whatever a name holds, it stays one line."""
    return " ".join(text.split())
