"""The ticket a technician gets after the release, by SMS and by IM, and the log line of each hop.

Both carry the seed's string (12.10.2012_14.00_12.10.2012_14.05_Ticket_1234_Caller_03472619287_
Called_732), from the line's template, in the company's time zone. Only one technician gets them:
the one who answered, or the last one rung when the caller gave up (the call's last hop).
"""

import datetime as dt
import logging
import string

from tickets.models import DEFAULT_TEMPLATE, SmsSettings, TicketCall, TicketHop, TicketMessage

logger = logging.getLogger(__name__)

FIELDS = ("start_date", "start_time", "end_date", "end_time", "ticket", "caller", "called")
MAX_BODY = 500


def template_check(template: str) -> None:
    """ValueError unless every {field} of the template is one of FIELDS (no attribute, no index)."""
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if name not in FIELDS or spec or conversion:
            raise ValueError(f"unknown field {{{name}}}: use {', '.join('{' + f + '}' for f in FIELDS)}")


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
    return written
