"""Writes of the telephony layer: PBX health, call records, pushed events, webhooks.

These are sync functions, one transaction each; the asyncio `pbx` process calls
them through sync_to_async (STYLE.md 7).
"""

import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import re
import socket
import urllib.error
import urllib.request

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Company, generate_webhook_secret, validate_webhook_url, webhook_address_is_public
from telephony.ami import OriginateOutcome
from telephony.models import CallRecord, PbxServer, PushToken, WebhookDelivery

log = logging.getLogger(__name__)

Disposition = CallRecord.Disposition

# The events a call record is folded from; everything else is left to the bus.
FOLDED_EVENTS = frozenset(
    {"Newchannel", "Newstate", "DialBegin", "DialEnd", "Hangup", "OriginateResponse", "Cdr"}
)

# A leg answered at any time stays ANSWERED, whatever a forked Cdr says later.
_RANK = {
    Disposition.PENDING: 0,
    Disposition.FAILED: 1,
    Disposition.NO_ANSWER: 2,
    Disposition.BUSY: 3,
    Disposition.ANSWERED: 4,
}
_DIAL_STATUS = {
    "ANSWER": Disposition.ANSWERED,
    "BUSY": Disposition.BUSY,
    "NOANSWER": Disposition.NO_ANSWER,
    "CANCEL": Disposition.NO_ANSWER,
    "CONGESTION": Disposition.FAILED,
    "CHANUNAVAIL": Disposition.FAILED,
}
# The outcomes of telephony.ami's Reason table, as a leg's disposition.
_ORIGINATE_OUTCOME = {
    "answered": Disposition.ANSWERED,
    "busy": Disposition.BUSY,
    "no_answer": Disposition.NO_ANSWER,
    "congestion": Disposition.FAILED,
    "failed": Disposition.FAILED,
}
_CDR_DISPOSITION = {
    "ANSWERED": Disposition.ANSWERED,
    "BUSY": Disposition.BUSY,
    "NO ANSWER": Disposition.NO_ANSWER,
    "FAILED": Disposition.FAILED,
    "CONGESTION": Disposition.FAILED,
}
_UNKNOWN = {"", "<unknown>"}


class OriginateAlreadyClaimed(Exception):
    """This ChannelId was dialed already: sending it again could ring a person twice."""


def ami_source(server: PbxServer | int) -> str:
    return f"ami:{server if isinstance(server, int) else server.pk}"


# -- PBX health ---------------------------------------------------------------


def pbx_server_state_set(*, server_id: int, state: str, error: str = "", last_event_at: float | None = None):
    """Record a server's connection state as the pbx process sees it."""
    now = timezone.now()
    fields = {"state": state, "state_changed_at": now, "last_error": error[:300]}
    if last_event_at is not None:
        fields["last_event_at"] = dt.datetime.fromtimestamp(last_event_at, dt.UTC)
    PbxServer.objects.filter(pk=server_id).update(**fields)


# -- call records ---------------------------------------------------------------


def call_record_claim(
    *,
    server: PbxServer,
    uniqueid: str,
    company: Company | None,
    app: str,
    app_ref: str = "",
    caller: str = "",
    callee: str = "",
    direction: str = CallRecord.Direction.OUTBOUND,
) -> CallRecord:
    """Reserve the record of a call about to be originated with ChannelId `uniqueid`.

    The unique (source, uniqueid) constraint makes this the guard against ringing
    anybody twice: a second claim of the same ChannelId raises OriginateAlreadyClaimed.
    """
    try:
        with transaction.atomic():
            return CallRecord.objects.create(
                source=ami_source(server),
                server=server,
                uniqueid=uniqueid,
                linkedid=uniqueid,
                company=company,
                app=app,
                app_ref=app_ref,
                caller=caller,
                callee=callee,
                direction=direction,
            )
    except IntegrityError:
        raise OriginateAlreadyClaimed(uniqueid) from None


def call_record_adopt(
    *,
    server_id: int,
    uniqueid: str,
    company_id: int | None,
    app: str,
    app_ref: str = "",
    direction: str = CallRecord.Direction.INBOUND,
) -> CallRecord:
    """Tag a call the PBX started (an inbound call reaching a flow) with its company and flow."""
    record, _ = CallRecord.objects.get_or_create(
        source=ami_source(server_id),
        uniqueid=uniqueid,
        defaults={"server_id": server_id, "linkedid": uniqueid},
    )
    CallRecord.objects.filter(pk=record.pk).update(
        company_id=company_id, app=app, app_ref=app_ref, direction=direction
    )
    record.refresh_from_db()
    return record


# The PBX's clock times calls to the second, unless it says a call starts after tomorrow (or
# before 2000): such a stamp could not even be shown in some time zones near the year 9999.
PBX_CLOCK_EARLIEST = 946684800.0  # 2000-01-01
PBX_CLOCK_AHEAD_SECONDS = 86400


def _event_time(event: dict) -> dt.datetime:
    # With `timestampevents = yes` (the contract's manager.conf) every event carries
    # the PBX's own clock; the pbx process stamps the others on receipt.
    received = float(event["_received"])
    try:
        stamped = float(event["Timestamp"])
    except (KeyError, ValueError):
        stamped = received
    if not PBX_CLOCK_EARLIEST <= stamped <= received + PBX_CLOCK_AHEAD_SECONDS:
        stamped = received  # also NaN, which no comparison holds for
    return dt.datetime.fromtimestamp(stamped, dt.UTC)


def _is_internal(channel: str) -> bool:
    # The ;2 half of a Local pair is Asterisk plumbing: the leg is its ;1 half.
    return channel.startswith("Local/") and channel.endswith(";2")


def _leg_of(event: dict) -> tuple[str, str] | None:
    """(uniqueid, channel) of the leg an event is about, or None when it is about no leg we keep."""
    name = event.get("Event")
    if name in ("DialBegin", "DialEnd"):
        uniqueid, channel = event.get("DestUniqueid", ""), event.get("DestChannel", "")
    elif name == "Cdr":
        uniqueid, channel = event.get("UniqueID", ""), event.get("Channel", "")
    else:
        uniqueid, channel = event.get("Uniqueid", ""), event.get("Channel", "")
    if not uniqueid or _is_internal(channel):
        return None
    return uniqueid, channel


def _text(event: dict, name: str, size: int) -> str:
    # Header values come from the PBX, caller ID from anybody: cut to the column, never fail on it.
    return str(event.get(name, ""))[:size]


def _earliest(current, candidate):
    return candidate if current is None or (candidate is not None and candidate < current) else current


def _latest(current, candidate):
    return candidate if current is None or (candidate is not None and candidate > current) else current


def _stronger(current: str, candidate: str) -> str:
    return candidate if _RANK[candidate] > _RANK[current] else current


def _fold(record: CallRecord, event: dict, parents: dict):
    name = event["Event"]
    when = _event_time(event)
    if name == "Newchannel":
        record.channel = _text(event, "Channel", 200) or record.channel
        record.linkedid = _text(event, "Linkedid", 150) or record.linkedid
        record.started_at = _earliest(record.started_at, when)
        if not record.caller and event.get("CallerIDNum") not in _UNKNOWN:
            record.caller = _text(event, "CallerIDNum", 80)
        # A channel Dial creates starts in exten "s": its number comes with DialBegin.
        if not record.callee and event.get("Exten") not in _UNKNOWN | {"s"}:
            record.callee = _text(event, "Exten", 80)
    elif name == "Newstate":
        if event.get("ChannelState") == "6":
            record.answered_at = _earliest(record.answered_at, when)
    elif name == "DialBegin":
        record.channel = record.channel or _text(event, "DestChannel", 200)
        record.started_at = _earliest(record.started_at, when)
        dialed = (event.get("DialString") or "").split("@")[0].split("/")[-1]
        if dialed and record.parent_id is None and event.get("Uniqueid"):
            record.callee = dialed[:80]
        parent_uid = event.get("Uniqueid")
        if parent_uid and record.parent_id is None and parent_uid in parents:
            record.parent_id = parents[parent_uid].pk
    elif name == "DialEnd":
        status = _DIAL_STATUS.get(event.get("DialStatus", ""))
        if status:
            record.disposition = _stronger(record.disposition, status)
        if status == Disposition.ANSWERED:
            record.answered_at = _earliest(record.answered_at, when)
    elif name == "Hangup":
        record.ended_at = _latest(record.ended_at, when)
        with contextlib.suppress(ValueError):
            cause = int(event.get("Cause", ""))
            if 0 <= cause <= 255:  # a Q.850 cause
                record.hangup_cause = cause
        record.hangup_cause_text = _text(event, "Cause-txt", 80)
    elif name == "OriginateResponse":
        outcome = _ORIGINATE_OUTCOME[OriginateOutcome.from_event(event).outcome]
        # A failed Originate may have no channel event at all: then it is timed by its answer.
        record.started_at = _earliest(record.started_at, when)
        record.disposition = _stronger(record.disposition, outcome)
        if outcome == Disposition.ANSWERED:
            record.answered_at = _earliest(record.answered_at, when)
        else:
            record.ended_at = _latest(record.ended_at, when)
    elif name == "Cdr":
        # Only the outcome: a Cdr's times are whole seconds in the PBX's local zone, and a
        # forked CDR splits one channel's time in two; the channel events time the leg.
        disposition = _CDR_DISPOSITION.get(event.get("Disposition", ""))
        if disposition:
            record.disposition = _stronger(record.disposition, disposition)
        if not record.caller and event.get("Source"):
            record.caller = _text(event, "Source", 80)


def _settle(record: CallRecord):
    """Derived fields: durations in whole seconds (truncated, as Asterisk's CDRs), final disposition."""
    if record.ended_at and record.started_at:
        record.duration = max(0, int((record.ended_at - record.started_at).total_seconds()))
    if record.ended_at and record.answered_at:
        record.billsec = max(0, int((record.ended_at - record.answered_at).total_seconds()))
    if record.answered_at:
        record.disposition = Disposition.ANSWERED
    elif record.ended_at and record.disposition == Disposition.PENDING:
        record.disposition = {
            17: Disposition.BUSY,
            18: Disposition.NO_ANSWER,
            19: Disposition.NO_ANSWER,
            16: Disposition.NO_ANSWER,
        }.get(record.hangup_cause, Disposition.FAILED)


_FIELDS = [
    "started_at",
    "answered_at",
    "ended_at",
    "channel",
    "linkedid",
    "parent",
    "company",
    "app",
    "app_ref",
    "caller",
    "callee",
    "duration",
    "billsec",
    "disposition",
    "hangup_cause",
    "hangup_cause_text",
]


def _state(record: CallRecord) -> tuple:
    return tuple(getattr(record, CallRecord._meta.get_field(name).attname) for name in _FIELDS)


def _write(records: list[CallRecord]):
    """One UPDATE per record, sent with executemany: bulk_update's CASE expressions cost
    more to build than the writes themselves on this hot path."""
    if not records:
        return
    fields = [CallRecord._meta.get_field(name) for name in [*_FIELDS, "updated_at"]]
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(CallRecord._meta.db_table)} SET "
        f"{', '.join(f'{quote(f.column)} = %s' for f in fields)} WHERE {quote('id')} = %s"
    )
    rows = [[f.get_db_prep_save(getattr(r, f.attname), connection) for f in fields] + [r.pk] for r in records]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


@transaction.atomic
def call_events_fold(*, server_id: int, events: list[dict]) -> list[tuple[int, str]]:
    """Fold a batch of AMI events into call records; returns (record id, "ringing"|"answer"|"hangup")
    for each transition the batch made. Idempotent: the same events again change nothing."""
    source = ami_source(server_id)
    legs = []
    for event in events:
        if event.get("Event") in FOLDED_EVENTS:
            leg = _leg_of(event)
            if leg:
                legs.append((leg[0], event))
    if not legs:
        return []
    uniqueids = {uid for uid, _ in legs}
    related = (
        uniqueids
        | {e.get("Uniqueid") for _, e in legs if e.get("Event") == "DialBegin"}
        | {e.get("Linkedid") for _, e in legs if e.get("Linkedid")}
    )
    related.discard(None)
    CallRecord.objects.bulk_create(
        [CallRecord(source=source, server_id=server_id, uniqueid=uid, linkedid=uid) for uid in uniqueids],
        ignore_conflicts=True,
    )
    records = {
        r.uniqueid: r
        for r in CallRecord.objects.select_for_update().filter(source=source, uniqueid__in=related).order_by()
    }
    before = {uid: _state(r) for uid, r in records.items()}
    now = timezone.now()
    for uid, event in legs:
        _fold(records[uid], event, records)
    transitions = []
    changed = []
    for uid in uniqueids:
        record = records[uid]
        _inherit(record, records)
        _settle(record)
        if _state(record) == before[uid]:
            continue  # a duplicate, or an event that tells nothing new
        record.updated_at = now
        changed.append(record)
        started, answered, ended = before[uid][:3]
        if started is None and record.started_at:
            transitions.append((record.pk, "ringing"))
        if answered is None and record.answered_at:
            transitions.append((record.pk, "answer"))
        if ended is None and record.ended_at:
            transitions.append((record.pk, "hangup"))
    _write(changed)
    if transitions:
        webhook_deliveries_create(record_transitions=transitions)
    return transitions


def _inherit(record: CallRecord, records: dict):
    """A leg the dialplan created belongs to the flow and company of the call that dialed it."""
    if record.company_id:
        return
    origin = None
    if record.parent_id:
        origin = next((r for r in records.values() if r.pk == record.parent_id), None)
    if origin is None and record.linkedid and record.linkedid != record.uniqueid:
        origin = records.get(record.linkedid)
    if origin is not None and origin.pk != record.pk:
        record.company_id, record.app, record.app_ref = origin.company_id, origin.app, origin.app_ref
        record.parent_id = record.parent_id or origin.pk


def call_records_reconcile(*, server_id: int, live_uniqueids: set[str], listed_at: dt.datetime) -> list[int]:
    """After a reconnect: records still open whose channel is no longer on the PBX ended while we were away.

    They are closed at the time of reconciliation, with what is known; nothing is forgotten. A record
    touched since the channels were listed (a call being placed right now) is left alone.
    """
    open_records = CallRecord.objects.filter(
        source=ami_source(server_id), ended_at__isnull=True, updated_at__lt=listed_at
    )
    closed = []
    now = timezone.now()
    for record in open_records.exclude(uniqueid__in=live_uniqueids):
        with transaction.atomic():
            locked = CallRecord.objects.select_for_update().get(pk=record.pk)
            if locked.ended_at is not None or locked.updated_at >= listed_at:
                continue
            locked.ended_at = now
            locked.hangup_cause_text = "ended while the PBX was unreachable"
            _settle(locked)
            locked.save()
            webhook_deliveries_create(record_transitions=[(locked.pk, "hangup")])
            closed.append(locked.pk)
    if closed:
        log.warning(
            "AMI server %s: %d call(s) ended while disconnected, closed on reconcile", server_id, len(closed)
        )
    return closed


# -- asterCC-style pushed events ------------------------------------------------

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
        if (
            record.ended_at
            and (record.ended_at - record.started_at).total_seconds() > settings.PUSH_CALL_MAX_SECONDS
        ):
            raise PushEventError(
                f"the call would last longer than {settings.PUSH_CALL_MAX_SECONDS} seconds",
                code="call_too_long",
            )
        _settle(record)
        record.save()
        transitions = [
            (record.pk, name)
            for name, old, new in zip(
                PUSH_EVENTS, before, (record.started_at, record.answered_at, record.ended_at), strict=True
            )
            if old is None and new is not None
        ]
        if transitions:
            webhook_deliveries_create(record_transitions=transitions)
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


# -- event push to the companies' webhooks --------------------------------------


def call_event_payload(record: CallRecord, event: str) -> dict:
    when = {"ringing": record.started_at, "answer": record.answered_at, "hangup": record.ended_at}[event]
    return {
        "event": event,
        "sessionid": record.linkedid or record.uniqueid,
        "uniqueid": record.uniqueid,
        "eventTime": when.isoformat() if when else None,
        "calltype": "dialout" if record.direction == CallRecord.Direction.OUTBOUND else "inbound",
        "caller": record.caller,
        "activenum": record.callee,
        "app": record.app,
        "reference": record.app_ref,
        "disposition": record.disposition,
        "duration": record.duration,
        "billsec": record.billsec,
        "hangupCause": record.hangup_cause,
    }


def webhook_deliveries_create(*, record_transitions: list[tuple[int, str]]):
    """Queue one signed POST per call event for companies with a webhook URL, sent after commit."""
    ids = {pk for pk, _ in record_transitions}
    records = {
        r.pk: r
        for r in CallRecord.objects.filter(pk__in=ids, company__active=True)
        .exclude(company__webhook_url="")
        .select_related("company")
    }
    deliveries = [
        WebhookDelivery(
            company=records[pk].company,
            event=event,
            url=records[pk].company.webhook_url,
            payload=call_event_payload(records[pk], event),
        )
        for pk, event in record_transitions
        if pk in records
    ]
    if not deliveries:
        return
    created = WebhookDelivery.objects.bulk_create(deliveries)
    from telephony.tasks import deliver_webhook  # tasks import this module

    for delivery in created:
        # robust: a broker hiccup is logged and leaves the delivery pending for requeue_webhooks.
        transaction.on_commit(lambda pk=delivery.pk: deliver_webhook.delay(pk), robust=True)


def webhook_secret_rotate(*, company: Company) -> str:
    """Give the company a new webhook signing secret and return it, to be shown once; every POST
    from now on, retries of older deliveries included, is signed with it."""
    secret = generate_webhook_secret()
    Company.objects.filter(pk=company.pk).update(webhook_secret=secret)
    company.webhook_secret = secret
    return secret


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class WebhookTransientError(Exception):
    """The receiver is unreachable or answered 429/5xx: worth another try later."""


WEBHOOK_TIMEOUT = 10
WEBHOOK_MAX_ATTEMPTS = 8


class WebhookTargetRefused(OSError):
    """The URL leads to an address webhooks may not reach (WEBHOOK_ALLOW_PRIVATE_TARGETS is off)."""


def _webhook_connect(address, timeout=WEBHOOK_TIMEOUT, source_address=None, **kwargs):
    """socket.create_connection that checks every address the host resolves to, then connects to
    those very addresses: a name cannot resolve to a public address for the check and to a
    private one for the connection."""
    host, port = address
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for *_, sockaddr in infos:
            if not webhook_address_is_public(sockaddr[0]):
                raise WebhookTargetRefused(f"{host} is at {sockaddr[0]}, not a public address")
    error = OSError(f"{host} resolves to no address")
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


class _WebhookHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _webhook_connect


class _WebhookHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _webhook_connect


class _WebhookHTTPHandler(urllib.request.HTTPHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_WebhookHTTPConnection, req, **kwargs)


class _WebhookHTTPSHandler(urllib.request.HTTPSHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_WebhookHTTPSConnection, req, **kwargs)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead anywhere, a private address included: it is an answer, not followed.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxy from the environment either: the checked address must be the one connected to.
_webhook_opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), _WebhookHTTPHandler, _WebhookHTTPSHandler, _NoRedirects
)


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """POST one delivery, signed with the company's secret. Raises WebhookTransientError when
    another attempt may succeed; a 3xx or 4xx answer (but 429) or a URL leading to a non-public
    address fails the delivery for good."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .select_related("company")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
    body = webhook_body(delivery.payload)
    status, error, refused = None, "", False
    try:
        # Checked again at delivery: the URL may predate the rule, or the setting changed since.
        validate_webhook_url(delivery.url)
        request = urllib.request.Request(
            delivery.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "callcenter-webhooks/1",
                "X-Signature": webhook_signature(delivery.company.webhook_secret, body),
                "X-Event": delivery.event,
                "X-Delivery": str(delivery.pk),
            },
        )
        with _webhook_opener.open(request, timeout=WEBHOOK_TIMEOUT) as response:
            status = response.status
    except ValidationError as exc:
        refused, error = True, f"refused: {' '.join(exc.messages)}"
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
        if 300 <= exc.code < 400:
            error += ": redirects are not followed, set the final URL"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        refused = isinstance(reason, WebhookTargetRefused)
        error = f"refused: {reason}" if refused else f"unreachable: {reason}"
    delivery.last_status_code = status
    delivery.last_error = error[:300]
    transient = not refused and (status is None or status == 429 or status >= 500)
    if status is not None and 200 <= status < 300:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.last_error = ""
    elif not transient or delivery.attempts >= WEBHOOK_MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    delivery.save(update_fields=["status", "delivered_at", "last_status_code", "last_error"])
    if delivery.status == WebhookDelivery.Status.PENDING:
        raise WebhookTransientError(error or f"HTTP {status}")
    return delivery


WEBHOOK_LOST_AFTER = dt.timedelta(minutes=5)


def webhook_deliveries_lost() -> list[int]:
    """Deliveries never attempted for a while: their task was lost (the broker was down at enqueue)."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING,
            attempts=0,
            created_at__lt=timezone.now() - WEBHOOK_LOST_AFTER,
        ).values_list("pk", flat=True)
    )
