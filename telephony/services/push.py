"""asterCC-style call events pushed over HTTP by a company's own PBX."""

import datetime as dt
import re

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Company
from telephony import transitions
from telephony.events import CallAnswered, CallEnded, CallSnapshot, CallStarted
from telephony.models import CallRecord, PushToken
from telephony.services.webhooks import webhook_deliveries_create
from telephony.transitions import Facts, Step

PUSH_EVENTS = ("ringing", "answer", "hangup")
PUSH_CALLTYPES = {
    "dialout": CallRecord.Direction.OUTBOUND,
    "inbound": CallRecord.Direction.INBOUND,
    "dialin": CallRecord.Direction.INBOUND,
}


class PushEventError(ValueError):
    """A pushed event that cannot be taken; the message says why, `code` is stable for programs."""

    def __init__(self, message: str, *, code: str = "invalid_event"):
        super().__init__(message)
        self.code = code


def push_token_create(*, company: Company) -> PushToken:
    """A new push token; its key is shown once, to whoever created it."""
    return PushToken.objects.create(company=company)


def push_token_revoke(*, company: Company, token_id: int) -> PushToken:
    """Revoke one of the company's push tokens: pushes with it get 401 from then on. Another
    company's token is PushToken.DoesNotExist, as if it did not exist."""
    token = PushToken.objects.get(pk=token_id, company=company)
    PushToken.objects.filter(pk=token.pk).update(active=False)
    token.active = False
    return token


# A PBX clock (or a company's zone setting) may be off by some hours, never by more than this.
PUSH_CLOCK_SLACK = dt.timedelta(days=1)


def push_event_ingest(*, company: Company, payload: dict) -> CallRecord:
    """Fold one asterCC-style event (event, sessionid, eventTime, calltype, activenum) into its record.

    The time must be plausible (from a day before the company existed to a day from now) and keep
    the call in order (ringing, then answer, then hangup) and within PUSH_CALL_MAX_SECONDS.
    """
    missing = [k for k in ("event", "sessionid", "eventTime") if not str(payload.get(k, "")).strip()]
    if missing:
        raise PushEventError(f"missing field(s): {', '.join(missing)}", code="missing_field")
    event = str(payload["event"]).lower()
    if event not in PUSH_EVENTS:
        raise PushEventError(
            f"event must be one of {', '.join(PUSH_EVENTS)}, not {payload['event']!r}", code="unknown_event"
        )
    calltype = str(payload.get("calltype", "dialout")).lower()
    if calltype not in PUSH_CALLTYPES:
        raise PushEventError(
            f"calltype must be one of {', '.join(PUSH_CALLTYPES)}, not {payload['calltype']!r}",
            code="unknown_calltype",
        )
    when = _push_time(payload["eventTime"], company.tzinfo)
    now = timezone.now()
    if not company.created_at - PUSH_CLOCK_SLACK <= when <= now + PUSH_CLOCK_SLACK:
        raise PushEventError(
            f"eventTime {when.isoformat()} is implausible: it must lie between a day before the company "
            f"was created and a day from now",
            code="event_time_out_of_range",
        )
    session = str(payload["sessionid"])[:150]
    with transaction.atomic():
        # Events may come out of order: an answer or hangup can arrive before its ringing.
        record, _ = CallRecord.objects.select_for_update().get_or_create(
            source=f"push:{company.pk}",
            uniqueid=session,
            defaults={
                "company": company,
                "linkedid": session,
                "app": "push",
                "direction": PUSH_CALLTYPES[calltype],
            },
        )
        _push_check_order(record, event, when)
        marks = (record.started_at, record.answered_at, record.ended_at)
        step = {"ringing": Step.START, "answer": Step.ANSWER, "hangup": Step.END}[event]
        transitions.apply(record, step, Facts(when=when))
        if event == "ringing":
            record.callee = record.callee or str(payload.get("activenum", ""))[:80]
            record.caller = record.caller or str(payload.get("callernum", ""))[:80]
        if (
            record.ended_at
            and (record.ended_at - record.started_at).total_seconds() > settings.PUSH_CALL_MAX_SECONDS
        ):
            raise PushEventError(
                f"the call would last longer than {settings.PUSH_CALL_MAX_SECONDS} seconds",
                code="call_too_long",
            )
        transitions.settle(record)
        record.save()
        kinds = {"ringing": CallStarted, "answer": CallAnswered, "hangup": CallEnded}
        webhook_deliveries_create(
            events=[
                kinds[name](record=CallSnapshot.of(record))
                for name, old, new in zip(
                    PUSH_EVENTS, marks, (record.started_at, record.answered_at, record.ended_at), strict=True
                )
                if old is None and new is not None
            ]
        )
    return record


def _push_check_order(record: CallRecord, event: str, when: dt.datetime):
    """Ringing, answer and hangup times must come in that order, whatever order the events arrive in."""
    # An answer or a hangup arriving first also sets started_at; it is a ringing time only when
    # strictly earlier than both.
    ringing = record.started_at
    if ringing is not None and any(
        t is not None and t <= ringing for t in (record.answered_at, record.ended_at)
    ):
        ringing = None
    must_precede = {
        "ringing": (record.answered_at, record.ended_at),
        "answer": (record.ended_at,),
        "hangup": (),
    }[event]
    must_follow = {"ringing": (), "answer": (ringing,), "hangup": (ringing, record.answered_at)}[event]
    if any(t is not None and when > t for t in must_precede) or any(
        t is not None and when < t for t in must_follow
    ):
        raise PushEventError(
            f"a {event} at {when.isoformat()} is out of order: a call rings, then is answered, then hangs up",
            code="event_out_of_order",
        )


# Epoch seconds, or an ISO 8601 calendar date and time in the extended format, with an optional
# offset; ASCII digits only (str.isdigit and float() also take other scripts' digits).
_EPOCH = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
_CALENDAR = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:?[0-9]{2})?",
    re.ASCII,
)


def _push_time(value, tz) -> dt.datetime:
    """An aware UTC time; a time without offset is in the company's zone."""
    text = str(value).strip()
    implausible = PushEventError(f"eventTime {text!r} is implausible", code="event_time_out_of_range")
    if _EPOCH.fullmatch(text):
        try:
            return dt.datetime.fromtimestamp(float(text), dt.UTC)
        except (ValueError, OverflowError, OSError):
            raise implausible from None  # past the year 9999
    if _CALENDAR.fullmatch(text):
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError as exc:  # the 13th month, the 30th of February
            raise PushEventError(
                f"eventTime {text!r} is not a valid time: {exc}", code="event_time_invalid"
            ) from None
        try:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).astimezone(dt.UTC)
        except OverflowError:
            raise implausible from None  # the year 1 or 9999 moved across midnight
    raise PushEventError(
        f"eventTime {text!r} is neither epoch seconds nor 'YYYY-MM-DD HH:MM:SS' with an optional offset",
        code="event_time_invalid",
    )
