"""asterCC-style call events pushed over HTTP by a company's own PBX."""

import datetime as dt

from django.db import transaction

from accounts.models import Company
from telephony.events import CallAnswered, CallEnded, CallSnapshot, CallStarted
from telephony.models import CallRecord, PushToken
from telephony.services.webhooks import webhook_deliveries_create
from telephony.transitions import _earliest, _latest
from telephony.transitions import settle as _settle

PUSH_EVENTS = ("ringing", "answer", "hangup")
PUSH_CALLTYPES = {
    "dialout": CallRecord.Direction.OUTBOUND,
    "inbound": CallRecord.Direction.INBOUND,
    "dialin": CallRecord.Direction.INBOUND,
}


class PushEventError(ValueError):
    """A pushed event that cannot be taken; the message says why."""


def push_token_create(*, company: Company) -> PushToken:
    return PushToken.objects.create(company=company)


def push_event_ingest(*, company: Company, payload: dict) -> CallRecord:
    """Fold one asterCC-style event (event, sessionid, eventTime, calltype, activenum) into its record."""
    missing = [k for k in ("event", "sessionid", "eventTime") if not str(payload.get(k, "")).strip()]
    if missing:
        raise PushEventError(f"missing field(s): {', '.join(missing)}")
    event = str(payload["event"]).lower()
    if event not in PUSH_EVENTS:
        raise PushEventError(f"event must be one of {', '.join(PUSH_EVENTS)}, not {payload['event']!r}")
    calltype = str(payload.get("calltype", "dialout")).lower()
    if calltype not in PUSH_CALLTYPES:
        raise PushEventError(
            f"calltype must be one of {', '.join(PUSH_CALLTYPES)}, not {payload['calltype']!r}"
        )
    when = _push_time(payload["eventTime"], company.tzinfo)
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
        before = (record.started_at, record.answered_at, record.ended_at)
        if event == "ringing":
            record.started_at = _earliest(record.started_at, when)
            record.callee = record.callee or str(payload.get("activenum", ""))[:80]
            record.caller = record.caller or str(payload.get("callernum", ""))[:80]
        elif event == "answer":
            record.answered_at = _earliest(record.answered_at, when)
            record.started_at = _earliest(record.started_at, when)
        else:
            record.ended_at = _latest(record.ended_at, when)
            record.started_at = _earliest(record.started_at, when)
        if record.answered_at and record.ended_at and record.answered_at > record.ended_at:
            raise PushEventError("answer time is after the hang-up time")
        _settle(record)
        record.save()
        kinds = {"ringing": CallStarted, "answer": CallAnswered, "hangup": CallEnded}
        webhook_deliveries_create(
            events=[
                kinds[name](record=CallSnapshot.of(record))
                for name, old, new in zip(
                    PUSH_EVENTS, before, (record.started_at, record.answered_at, record.ended_at), strict=True
                )
                if old is None and new is not None
            ]
        )
    return record


def _push_time(value, tz) -> dt.datetime:
    text = str(value).strip()
    try:
        if text.replace(".", "", 1).isdigit():
            return dt.datetime.fromtimestamp(float(text), dt.UTC)
        parsed = dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise PushEventError(
            f"eventTime {text!r} is neither epoch seconds nor 'YYYY-MM-DD HH:MM:SS'"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
