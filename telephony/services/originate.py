"""The claim that stands between a task and a second ring.

Before its Originate is written, a call is claimed and marked sent in one commit: the call record
(unique per server and ChannelId) is created `sent`, or a claim made earlier (`claimed`: with a
queue's offer, or given back because the PBX was unreachable) turns `sent` by a conditional
update. Only that commit lets the Originate go out, and the PBX's events settle the record. A
retry of a ChannelId that was sent gets OriginateAlreadyClaimed, never a second Originate; one
whose claim is still `claimed` sends it. A record sent whose Originate never left (the process
died between the commit and the write) is told apart from a ringing one by the PBX, not by the
retry: the reconcile settles it FAILED once the PBX has not listed it for ORIGINATE_GRACE.
"""

import functools
import logging

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Company
from telephony import transitions
from telephony.events import CallEvent, OriginateResult
from telephony.models import CallRecord, PbxServer
from telephony.services.servers import ami_source
from telephony.transitions import Facts, Step

State = CallRecord.State
log = logging.getLogger(__name__)

# Where the pbx process says "this record's OriginateResponse is folded" (payload: record ids).
OUTCOME_CHANNEL = "telephony_originate_outcome"
_redis = None  # the pbx process's client, made on the first announce (redis is imported only then)


class OriginateAlreadyClaimed(Exception):
    """This ChannelId was sent already: sending it again could ring a person twice."""

    def __init__(self, uniqueid: str, record: CallRecord | None = None):
        super().__init__(uniqueid)
        self.record = record


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
    linkedid: str = "",
    sent: bool = False,
) -> CallRecord:
    """Reserve the record of a call about to be originated with ChannelId `uniqueid`; `linkedid`
    names the call it is a leg of, when the platform originates it for a call already going on (an
    agent rung for a queue caller): Asterisk starts a new Linkedid for every Originate.

    With `sent`, the claim is marked sent in the same commit, the one durable write before the
    Originate (of two senders, one wins). Without, it stays `claimed`, for an Originate to come
    (written with another transaction, as a queue's offer is). A claim never sent is handed back
    (marked sent with `sent`); one sent already raises OriginateAlreadyClaimed with the record.
    """
    source = ami_source(server)
    # Read first, not an INSERT that fails: a queue's offer claimed its leg already, and a failed
    # INSERT is an error in PostgreSQL's log for every agent rung.
    record = CallRecord.objects.filter(source=source, uniqueid=uniqueid).first()
    if record is None:
        try:
            with transaction.atomic():
                return CallRecord.objects.create(
                    source=source,
                    uniqueid=uniqueid,
                    server=server,
                    linkedid=linkedid or uniqueid,
                    company=company,
                    app=app,
                    app_ref=app_ref,
                    caller=caller,
                    callee=callee,
                    direction=direction,
                    state=State.SENT if sent else State.CLAIMED,
                )
        except IntegrityError:  # the same ChannelId claimed a moment before, by another sender
            record = CallRecord.objects.filter(source=source, uniqueid=uniqueid).first()
            if record is None:
                raise
    if record.state == State.CLAIMED:
        if not sent:
            return record
        now = timezone.now()
        claimed = CallRecord.objects.filter(pk=record.pk, state=State.CLAIMED)
        if claimed.update(state=State.SENT, updated_at=now):
            record.state, record.updated_at = State.SENT, now
            return record
        record = CallRecord.objects.filter(pk=record.pk).first() or record
    raise OriginateAlreadyClaimed(uniqueid, record)


def call_record_send(*, record_id: int):
    """Mark a claim made earlier sent: of two senders, one wins. (The Originate flow claims and marks
    sent in one commit, `call_record_claim(sent=True)`.)"""
    sent = CallRecord.objects.filter(pk=record_id, state=State.CLAIMED).update(
        state=State.SENT, updated_at=timezone.now()
    )
    if sent != 1:
        record = CallRecord.objects.filter(pk=record_id).first()
        raise OriginateAlreadyClaimed(record.uniqueid if record else str(record_id), record)


def call_record_unsent(*, record_id: int):
    """The Originate was not written (the PBX was not connected): claimed again, for a retry."""
    CallRecord.objects.filter(pk=record_id, state=State.SENT, started_at__isnull=True).update(
        state=State.CLAIMED, updated_at=timezone.now()
    )


@transaction.atomic
def call_record_refused(*, record_id: int, reason: str) -> CallRecord | None:
    """Asterisk surely did not take the call (it refused the Originate, or it was never sent):
    the record ends here, FAILED, unless the PBX's own events settled it already."""
    record = CallRecord.objects.select_for_update().filter(pk=record_id).first()
    if record is None or record.state == State.ENDED:
        return record
    transitions.apply(
        record,
        Step.REFUSED,
        Facts(when=timezone.now(), disposition=CallRecord.Disposition.FAILED, cause_text=reason),
    )
    transitions.settle(record)
    record.save()
    return record


def call_record_give_up(*, server: PbxServer, uniqueid: str, reason: str) -> CallRecord | None:
    """A caller that will not retry gives up a claim it could not send: the record ends, FAILED.
    A claim that was sent is left to the PBX's events."""
    record = CallRecord.objects.filter(
        source=ami_source(server), uniqueid=uniqueid, state=State.CLAIMED
    ).first()
    return call_record_refused(record_id=record.pk, reason=reason) if record else None


def outcome_transport() -> str:
    """How a facade waiting for an Originate's outcome hears that the pbx process folded it:
    PostgreSQL's LISTEN/NOTIFY, else Redis pub/sub where Redis is the broker, else ("poll") it
    re-reads the record, for the embedded defaults (SQLite and the file broker)."""
    if connection.vendor == "postgresql":
        return "postgresql"
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return "redis"
    return "poll"


def originate_outcomes_notify(*, events: list[CallEvent], transport: str | None = None):
    """Wake the facades waiting for the outcomes among `events`, once the fold's transaction commits.
    A wake-up only: the waiter reads the record, and re-reads it now and then should one be lost."""
    ids = [event.record.id for event in events if isinstance(event, OriginateResult)]
    if not ids:
        return
    transport = transport or outcome_transport()
    if transport == "postgresql":
        # Inside the fold's transaction: PostgreSQL delivers it at the commit, never before.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_notify(%s, id::text) FROM unnest(%s::bigint[]) AS id", [OUTCOME_CHANNEL, ids]
            )
    elif transport == "redis":
        transaction.on_commit(functools.partial(_publish, ",".join(map(str, ids))), robust=True)


def _publish(payload: str):
    import redis

    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        _redis.publish(OUTCOME_CHANNEL, payload)
    except redis.RedisError as exc:  # the waiters' slow re-read finds the outcome
        log.warning("cannot announce Originate outcomes %s: %s", payload, exc)
