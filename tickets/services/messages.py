"""The ticket a technician gets after the release, by SMS and by IM, and the log line of each hop.

Both carry the seed's string (12.10.2012_14.00_12.10.2012_14.05_Ticket_1234_Caller_03472619287_
Called_732), from the line's template, in the company's time zone. Only one technician gets them:
the one who answered, or the last one rung when the caller gave up (the call's last hop).

The SMS is sent here too (ticket_sms_send, by the tickets.send_sms task): claimed as
config.outbox claims a mail, so it goes once; retried after a doubling pause while the gateway's
failure may pass; taken up again by the sweep (ticket_sms_lost) when its task was lost.
"""

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.outbox import due, outbox_claim
from tickets.models import DEFAULT_TEMPLATE, SmsSettings, TicketCall, TicketHop, TicketMessage
from tickets.sms import SmsFailed, international_number, sms_credentials, sms_provider
from tickets.validators import template_check

logger = logging.getLogger(__name__)

MAX_BODY = 500

# An SMS the gateway could not take for a reason that passes (a timeout, a 5xx, no connection) is
# tried again after 30 s, then 1, 2, 4, 8 min: a ticket is urgent, a gateway down for a quarter of an
# hour is not hammered; after the sixth try it is FAILED with the last error.
SMS_MAX_ATTEMPTS = 6
SMS_RETRY_FIRST_SECONDS = 30
SMS_RETRY_MAX_SECONDS = 900
# The sweep takes up an SMS whose task should have run this long ago (lost with the broker or a
# dead worker; a worker that died mid-send gives its claim up after config.outbox.CLAIM_SECONDS).
SMS_LOST_AFTER_SECONDS = 60
SMS_SWEEP_BATCH = 500


def _fields(hop: TicketHop, caller: str, tz) -> dict[str, str]:
    start = hop.started_at.astimezone(tz)
    end = (hop.ended_at or hop.started_at).astimezone(tz)
    return {
        "start_date": f"{start:%d.%m.%Y}",
        "start_time": f"{start:%H.%M}",
        "end_date": f"{end:%d.%m.%Y}",
        "end_time": f"{end:%H.%M}",
        "ticket": str(hop.ticket),
        "caller": caller,
        "called": hop.called,
    }


def ticket_text(*, hop: TicketHop, template: str, caller: str, tz: dt.tzinfo) -> str:
    """The template filled in for one hop (a template that no longer parses falls back to the seed's)."""
    fields = _fields(hop, caller, tz)
    try:
        template_check(template)
        text = template.format(**fields)
    except ValueError:
        logger.warning("ticket line template %r is not valid: the default is used", template)
        text = DEFAULT_TEMPLATE.format(**fields)
    return " ".join(text.split())[:MAX_BODY]


def hop_log_line(*, hop: TicketHop, caller: str, tz: dt.tzinfo) -> str:
    """The seed's log line of a hop: always the default format, `_END` on the call's last hop."""
    line = DEFAULT_TEMPLATE.format(**_fields(hop, caller, tz))
    return f"{line}_END" if hop.last else line


def im_address(internal: str) -> str:
    """MessageSend's To for an internal phone: PJSIP/732 -> pjsip:732, a number -> pjsip:<number>."""
    tech, sep, rest = internal.partition("/")
    if not sep:
        return f"pjsip:{internal}"
    return f"{tech.lower()}:{rest}"


def ticket_messages_queue(*, call_id: int) -> dict[str, int]:
    """Write the SMS and the IM of an ended call for its last hop's technician, PENDING, once (a
    second call writes nothing). Returns the ids written, by channel: the pbx process sends the IM,
    a Celery worker the SMS (no SMS without the company's SMS settings)."""
    call = TicketCall.objects.select_related("line__company").get(pk=call_id)
    hop = call.hops.filter(last=True).select_related("technician").first()
    if hop is None or hop.technician is None:
        return {}
    technician = hop.technician
    text = ticket_text(
        hop=hop, template=call.line.message_template, caller=call.caller, tz=call.line.company.tzinfo
    )
    settings = SmsSettings.objects.filter(company_id=call.line.company_id).first()
    provider = settings.provider if settings else SmsSettings.Provider.NONE
    sms_to = technician.sms_number or technician.mobile
    wanted = []
    if sms_to and provider != SmsSettings.Provider.NONE:
        wanted.append((TicketMessage.Channel.SMS, sms_to))
    wanted.append((TicketMessage.Channel.IM, technician.im_address or im_address(technician.internal)))
    written = {}
    for channel, to in wanted:
        message, created = TicketMessage.objects.get_or_create(
            call=call,
            channel=channel,
            defaults={"hop": hop, "technician": technician, "to": to[:120], "body": text},
        )
        if created:
            written[channel] = message.pk
    if TicketMessage.Channel.SMS in written:
        from tickets.tasks import send_sms  # the tasks import this module

        # robust: a broker down at commit leaves the SMS pending for the sweep, the call's end is kept.
        transaction.on_commit(lambda pk=written[TicketMessage.Channel.SMS]: send_sms.delay(pk), robust=True)
    return written


class SmsRetry(Exception):
    """The SMS is still pending after a failure that may pass: tried again in `countdown` seconds."""

    def __init__(self, error: str, countdown: int):
        super().__init__(error)
        self.countdown = countdown


def ticket_sms_send(*, message_id: int, now: dt.datetime | None = None) -> TicketMessage | None:
    """Send one pending SMS through the company's provider, claimed first (config.outbox): of two
    workers only one sends it. Sent: SENT with the gateway's reference and status. Refused (4xx, a
    URL refused, no provider): FAILED for good. Otherwise still PENDING with the error and SmsRetry
    raised, after a pause doubled at each try, FAILED after SMS_MAX_ATTEMPTS. None: not this
    worker's to send (gone, sent, claimed elsewhere, or its pause not over)."""
    now = now or timezone.now()
    sms = TicketMessage.objects.filter(pk=message_id, channel=TicketMessage.Channel.SMS)
    if not sms.exists() or not outbox_claim(model=TicketMessage, pk=message_id, now=now):
        return None
    message = sms.select_related("technician", "call__line").first()
    if message is None:
        return None  # its call was deleted meanwhile
    claim = message.next_try_at
    company_id = message.call.line.company_id
    # Settings deleted since the SMS was written: no provider, it fails for good.
    settings = SmsSettings.objects.filter(company_id=company_id).first() or SmsSettings(
        company_id=company_id, provider=SmsSettings.Provider.NONE
    )
    try:
        sent = sms_provider(settings).send(
            to=international_number(message.to, settings.country_prefix),
            text=message.body,
            credentials=sms_credentials(settings=settings, technician=message.technician),
        )
    except SmsFailed as exc:
        return _sms_failed(message, exc, claim=claim, now=now)
    answered_at = timezone.now()
    fields = {
        "state": TicketMessage.State.SENT,
        "sent_at": answered_at,
        "next_try_at": None,
        "last_error": "",
        "provider_reference": sent.reference,
        "delivery_status": sent.status,
        "delivery_at": answered_at,
    }
    if not _sms_store(message, claim, fields):
        return None
    logger.info("ticket SMS %s sent to %s, reference %r", message.pk, message.to, sent.reference)
    return message


def _sms_store(message: TicketMessage, claim: dt.datetime, fields: dict) -> bool:
    """Written only while the claim is still this worker's (a send cannot outlast it: the gateway's
    timeout is at most a minute, the claim ten)."""
    kept = TicketMessage.objects.filter(
        pk=message.pk, state=TicketMessage.State.PENDING, next_try_at=claim
    ).update(**fields)
    if not kept:
        logger.warning(
            "ticket SMS %s: claim lost during its send, its outcome left to the new owner", message.pk
        )
        return False
    for field, value in fields.items():
        setattr(message, field, value)
    return True


def _sms_failed(message: TicketMessage, exc: SmsFailed, *, claim: dt.datetime, now: dt.datetime):
    error = str(exc)[:300]
    fields = {"last_error": error}
    if exc.status:  # the gateway answered: its word is the delivery status
        fields.update(delivery_status=exc.status[:40], delivery_at=timezone.now())
    pause = None
    if exc.transient and message.attempts < SMS_MAX_ATTEMPTS:
        pause = min(SMS_RETRY_FIRST_SECONDS * 2 ** max(message.attempts - 1, 0), SMS_RETRY_MAX_SECONDS)
        fields["next_try_at"] = max(now, timezone.now()) + dt.timedelta(seconds=pause)
    else:
        fields.update(state=TicketMessage.State.FAILED, next_try_at=None)
    if not _sms_store(message, claim, fields):
        return None
    if pause is None:
        logger.warning(
            "ticket SMS %s to %s failed for good after %s tries: %s",
            message.pk,
            message.to,
            message.attempts,
            error,
        )
        return message
    logger.warning(
        "ticket SMS %s to %s not sent, try %s, next in %s s: %s",
        message.pk,
        message.to,
        message.attempts,
        pause,
        error,
    )
    raise SmsRetry(error, pause)


def ticket_sms_lost(*, now: dt.datetime | None = None) -> list[int]:
    """Pending SMS whose task was lost: never tried SMS_LOST_AFTER_SECONDS after being written, or a
    retry (or a dead worker's claim) overdue by as much. Their task is queued again: the claim
    keeps a task that was only late from sending them twice."""
    now = now or timezone.now()
    late = now - dt.timedelta(seconds=SMS_LOST_AFTER_SECONDS)
    return list(
        TicketMessage.objects.filter(due(now), channel=TicketMessage.Channel.SMS)
        .filter(Q(next_try_at__isnull=True, created_at__lt=late) | Q(next_try_at__lt=late))
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:SMS_SWEEP_BATCH]
    )
