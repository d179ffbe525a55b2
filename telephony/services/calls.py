"""Call records folded from the PBX's events, and settled when the PBX no longer knows a call.

Every change of a record's times, outcome and state goes through
telephony.transitions; this module maps AMI events onto its steps.
"""

import datetime as dt
import logging
from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from telephony import transitions
from telephony.ami import OriginateOutcome
from telephony.events import (
    CallAnswered,
    CallBridged,
    CallEnded,
    CallEvent,
    CallSnapshot,
    CallStarted,
    OriginateResult,
)
from telephony.models import CallRecord
from telephony.rows import one_of, rows_of
from telephony.services.originate import originate_outcomes_notify
from telephony.services.servers import Lease, ami_source, pbx_server_lease_check
from telephony.services.webhooks import webhook_deliveries_create
from telephony.transitions import Facts, Step

log = logging.getLogger(__name__)

Disposition = CallRecord.Disposition
State = CallRecord.State

# The events a call record is folded from; everything else is left to the bus.
FOLDED_EVENTS = frozenset(
    {"Newchannel", "Newstate", "DialBegin", "DialEnd", "Hangup", "OriginateResponse", "Cdr", "BridgeEnter"}
)

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

# Written by the fold; the rest of a record is set when it is created or claimed.
_FIELDS = [
    "started_at",
    "answered_at",
    "bridged_at",
    "ended_at",
    "channel",
    "linkedid",
    "parent",
    "company",
    "app",
    "app_ref",
    "caller",
    "callee",
    "state",
    "duration",
    "billsec",
    "disposition",
    "bridge_id",
    "originate_reason",
    "hangup_cause",
    "hangup_cause_text",
    "outcome_guessed",
]
_ATTNAMES = [CallRecord._meta.get_field(name).attname for name in _FIELDS]
# Every column: a record the fold reads is whole (snapshots and apps see all of it).
_ALL_FIELDS = [f.name for f in CallRecord._meta.concrete_fields]
_NEW_FIELDS = [name for name in _ALL_FIELDS if name != "id"]


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


def event_time(event: dict) -> dt.datetime:
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


def _local_two(channel: str) -> bool:
    # The ;2 half of a Local pair: Asterisk plumbing, whose leg is its ;1 half, unless the
    # platform adopted it (a caller reaching a platform context through a Local channel).
    return channel.startswith("Local/") and channel.endswith(";2")


def _partner(channel: str) -> str:
    """The ;1 half of a Local pair's ;2 half: created and answered with it, and always folded."""
    return channel[:-1] + "1"


def _leg_of(event: dict) -> tuple[str, str] | None:
    """(uniqueid, channel) of the leg an event is about, or None when it is about no leg."""
    name = event.get("Event")
    if name in ("DialBegin", "DialEnd"):
        uniqueid, channel = event.get("DestUniqueid", ""), event.get("DestChannel", "")
    elif name == "Cdr":
        uniqueid, channel = event.get("UniqueID", ""), event.get("Channel", "")
    else:
        uniqueid, channel = event.get("Uniqueid", ""), event.get("Channel", "")
    if not uniqueid:
        return None
    return uniqueid, channel


def _text(event: dict, name: str, size: int) -> str:
    # Header values come from the PBX, caller ID from anybody: cut to the column, never fail on it.
    return str(event.get(name, ""))[:size]


def _cause(event: dict) -> int | None:
    try:
        return int(event.get("Cause", ""))
    except ValueError:
        return None


def _fold(record: CallRecord, event: dict, records: dict) -> OriginateOutcome | None:
    """Fold one event into its leg; returns the Originate's outcome when the event is its answer."""
    name = event["Event"]
    when = event_time(event)
    if name == "Newchannel":
        record.channel = _text(event, "Channel", 200) or record.channel
        # Unless the leg is already known to be part of another call: claimed for it by the app that
        # originated it, or joined to it in a bridge whose BridgeEnter came first.
        if record.linkedid in ("", record.uniqueid):
            record.linkedid = _text(event, "Linkedid", 150) or record.linkedid
        transitions.apply(record, Step.START, Facts(when=when))
        if not record.caller and event.get("CallerIDNum") not in _UNKNOWN:
            record.caller = _text(event, "CallerIDNum", 80)
        # A channel Dial creates starts in exten "s": its number comes with DialBegin.
        if not record.callee and event.get("Exten") not in _UNKNOWN | {"s"}:
            record.callee = _text(event, "Exten", 80)
    elif name == "Newstate":
        if event.get("ChannelState") == "6":
            transitions.apply(record, Step.ANSWER, Facts(when=when))
    elif name == "DialBegin":
        record.channel = record.channel or _text(event, "DestChannel", 200)
        transitions.apply(record, Step.START, Facts(when=when))
        dialed = (event.get("DialString") or "").split("@")[0].split("/")[-1]
        if dialed and record.parent_id is None and event.get("Uniqueid"):
            record.callee = dialed[:80]
        parent_uid = event.get("Uniqueid")
        if parent_uid and record.parent_id is None and parent_uid in records:
            record.parent_id = records[parent_uid].pk
    elif name == "DialEnd":
        status = _DIAL_STATUS.get(event.get("DialStatus", ""))
        if status == Disposition.ANSWERED:
            transitions.apply(record, Step.ANSWER, Facts(when=when, disposition=status))
        elif status:
            transitions.apply(record, Step.OUTCOME, Facts(disposition=status))
    elif name == "Hangup":
        _identify(record, event)
        if event.get("ChannelState") == "6" and record.answered_at is None:
            # Up when it hung up: answered, by then at the latest (its Newstate was not seen).
            transitions.apply(record, Step.ANSWER, Facts(when=when))
        cause = _cause(event)
        transitions.apply(
            record, Step.END, Facts(when=when, cause=cause, cause_text=_text(event, "Cause-txt", 80))
        )
    elif name == "OriginateResponse":
        outcome = OriginateOutcome.from_event(event)
        record.originate_reason = outcome.reason
        disposition = _ORIGINATE_OUTCOME[outcome.outcome]
        # A failed Originate may have no channel event at all: then it is timed by its answer.
        step = Step.ANSWER if disposition == Disposition.ANSWERED else Step.END
        transitions.apply(record, step, Facts(when=when, disposition=disposition))
        return outcome
    elif name == "Cdr":
        _cdr(record, event, when)
    elif name == "BridgeEnter":
        record.bridge_id = _text(event, "BridgeUniqueid", 150)
        # Asterisk gives a channel joining a bridge the bridge's oldest Linkedid: from now on the
        # leg is part of that call (an agent's leg, of the queue caller's call).
        record.linkedid = _text(event, "Linkedid", 150) or record.linkedid
    return None


def _identify(record: CallRecord, event: dict, *, caller: bool = False):
    """Who the leg is, from any event that says it: for a leg whose Newchannel was not folded.
    The caller only from a listing: a Hangup's caller ID may differ from the Newchannel's (a Local
    callee that Dial made shows the dialing extension, `s`), and events come in any order."""
    record.channel = record.channel or _text(event, "Channel", 200)
    linkedid = _text(event, "Linkedid", 150)
    if linkedid and record.linkedid in ("", record.uniqueid):
        record.linkedid = linkedid
    if caller and not record.caller and event.get("CallerIDNum", "") not in _UNKNOWN:
        record.caller = _text(event, "CallerIDNum", 80)


def _seconds(value) -> int | None:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < 10**7 else None


def _cdr(record: CallRecord, event: dict, when: dt.datetime):
    """The outcome; and, where the channel events told none (a leg adopted late, or begun under
    another session), its start and answer. A Cdr's own times are whole seconds in the PBX's local
    zone, so they are counted back from its end by its durations, which are no zone's."""
    disposition = _CDR_DISPOSITION.get(event.get("Disposition", ""))
    if transitions.end_guessed(record):
        # Written at the channel's end: a truer end than the reconcile's guess.
        transitions.apply(record, Step.END, Facts(when=when, cause_text=""))
    end = min(record.ended_at, when) if record.ended_at else when  # whichever came first
    duration, billsec = _seconds(event.get("Duration")), _seconds(event.get("BillableSeconds"))
    # Whole seconds cut short (a fork's slice, too): counted back, never earlier than the truth,
    # so the earliest count stands, and a channel event's time (as early) is not moved by it.
    if duration is not None:
        transitions.apply(record, Step.START, Facts(when=end - dt.timedelta(seconds=duration)))
    if disposition == Disposition.ANSWERED and billsec is not None:
        transitions.apply(record, Step.ANSWER, Facts(when=end - dt.timedelta(seconds=billsec)))
    if disposition:
        transitions.apply(record, Step.OUTCOME, Facts(disposition=disposition))
    if not record.caller and event.get("Source"):
        record.caller = _text(event, "Source", 80)
    record.channel = record.channel or _text(event, "Channel", 200)


def _snapshot(record: CallRecord) -> CallSnapshot:
    """The record as the batch's end would settle it, were this its last event."""
    # A shallow copy of its values only: copy.copy() pickles a model instance's whole state.
    settled = CallRecord.__new__(CallRecord)
    settled.__dict__.update(record.__dict__)
    transitions.settle(settled)
    return CallSnapshot.of(settled)


def _marks(record: CallRecord) -> tuple:
    return (record.started_at is not None, record.answered_at is not None, record.ended_at is not None)


def _state(record: CallRecord) -> tuple:
    values = record.__dict__
    return tuple(values[name] for name in _ATTNAMES)


def _write(records: list[CallRecord]):
    """The records' folded fields, in one UPDATE ... FROM (VALUES ...) per batch (telephony.rows):
    bulk_update's CASE expressions, or an UPDATE a record with each value prepared by its field,
    cost more than the writes themselves on this hot path."""
    if not records:
        return
    rows = rows_of(CallRecord, [*_FIELDS, "updated_at"])
    rows.update([[r.pk, *row] for r, row in zip(records, rows.values(records), strict=True)])


def _records_create(*, source: str, server_id: int, uniqueids: set[str]):
    """A record for each leg that has none yet, in one INSERT ... ON CONFLICT DO NOTHING: its
    fields' defaults, the leg's ids, its server."""
    if not uniqueids:
        return
    defaults = {f.name: f.get_default() for f in CallRecord._meta.concrete_fields}
    defaults.update(source=source, server=server_id, updated_at=timezone.now())
    template = [defaults[name] for name in _NEW_FIELDS]
    uid, link = _NEW_FIELDS.index("uniqueid"), _NEW_FIELDS.index("linkedid")
    new = []
    for uniqueid in sorted(uniqueids):  # one order for every writer: no two inserts wait on each other
        row = template.copy()
        row[uid] = row[link] = uniqueid
        new.append(row)
    rows = rows_of(CallRecord, _NEW_FIELDS)
    rows.insert(rows.adapt(new), ignore_conflicts=True)


def _records_locked(where: str, params: list) -> list[CallRecord]:
    """The records matching `where` (SQL over their columns), whole, locked for the transaction."""
    return rows_of(CallRecord, _ALL_FIELDS).select(where, params, lock=True)


_SOURCE, _STATE = connection.ops.quote_name("source"), connection.ops.quote_name("state")


def _bridge(record: CallRecord, when: dt.datetime, records: dict, uid: str) -> list[CallEvent]:
    """A leg entered a bridge: it is bridged with every open leg already there."""
    others = [
        r
        for key, r in records.items()
        if key != uid and r.bridge_id == record.bridge_id and r.state != State.ENDED and r.pk != record.pk
    ]
    if not others:
        return []
    events = []
    for leg in [record, *others]:
        if leg.bridged_at is None or when < leg.bridged_at:
            leg.bridged_at = when
    for other in others:
        events.append(CallBridged(record=_snapshot(record), other=_snapshot(other)))
        events.append(CallBridged(record=_snapshot(other), other=_snapshot(record)))
    return events


@transaction.atomic
def call_events_fold(*, server_id: int, events: list[dict], lease: Lease | None = None) -> list[CallEvent]:
    """Fold a batch of AMI events into call records; returns the typed events the batch caused,
    in order, each with the record as it was at that point. Idempotent: the same events again
    change nothing and cause nothing. With `lease`, nothing is written unless it still holds the
    server (LeaseLost): a pbx process that was taken over folds nothing more.

    Every channel is a leg but a Local pair's ;2 half, which is folded only once the platform
    tracks it (a record exists: a flow adopted it, a caller reaching a platform context through
    a Local channel); what it did before, it shares with its ;1 half."""
    if lease is not None:
        pbx_server_lease_check(lease=lease)
    source = ami_source(server_id)
    legs = []
    for event in events:
        if event.get("Event") in FOLDED_EVENTS:
            leg = _leg_of(event)
            if leg:
                legs.append((*leg, event))
    if not legs:
        return []
    halves = {uid for uid, channel, _ in legs if _local_two(channel)}
    uniqueids = {uid for uid, _, _ in legs}
    related = (
        uniqueids
        | {e.get("Uniqueid") for _, _, e in legs if e.get("Event") == "DialBegin"}
        | {e.get("Linkedid") for _, _, e in legs if e.get("Linkedid")}
    )
    related.discard(None)
    bridges = {e.get("BridgeUniqueid") for _, _, e in legs if e.get("Event") == "BridgeEnter"}
    bridges.discard(None)
    _records_create(source=source, server_id=server_id, uniqueids=uniqueids - halves)
    ids, params = one_of("uniqueid", related)
    if bridges:
        in_bridges, more = one_of("bridge_id", bridges)
        ids, params = f"{ids} OR ({in_bridges} AND {_STATE} <> %s)", [*params, *more, State.ENDED]
    records = {r.uniqueid: r for r in _records_locked(f"{_SOURCE} = %s AND ({ids})", [source, *params])}
    legs = [(uid, channel, event) for uid, channel, event in legs if uid in records]
    unstarted = {uid for uid, _, _ in legs if uid in halves and records[uid].started_at is None}
    if unstarted:
        # Its ;1 half, found by name within the call (Linkedid is indexed, channel names are not).
        pairs = {_partner(channel) for uid, channel, _ in legs if uid in unstarted}
        links = {e.get("Linkedid") for uid, _, e in legs if uid in unstarted} | {
            records[uid].linkedid for uid in unstarted
        }
        links -= {None, ""}
        in_links, params = one_of("linkedid", links)
        in_pairs, more = one_of("channel", pairs)
        where = f"{_SOURCE} = %s AND {in_links} AND {in_pairs}"
        for partner in _records_locked(where, [source, *params, *more]) if links else []:
            records.setdefault(partner.uniqueid, partner)
    before = {uid: _state(r) for uid, r in records.items()}
    typed: list[CallEvent] = []
    for uid, channel, event in legs:
        record = records[uid]
        marks = _marks(record)
        guessed = transitions.end_guessed(record)
        bridge = record.bridge_id
        if uid in halves and record.started_at is None:
            _share(record, channel, records)
        outcome = _fold(record, event, records)
        _inherit(record, records)
        if outcome is not None:
            typed.append(
                OriginateResult(record=_snapshot(record), reason=outcome.reason, outcome=outcome.outcome)
            )
        started, answered, ended = _marks(record)
        if started and not marks[0]:
            typed.append(CallStarted(record=_snapshot(record)))
        if answered and not marks[1]:
            typed.append(CallAnswered(record=_snapshot(record)))
        if record.bridge_id and record.bridge_id != bridge and not ended:
            typed.extend(_bridge(record, event_time(event), records, uid))
        if ended and (not marks[2] or (guessed and not transitions.end_guessed(record))):
            # A first end, or Asterisk's own replacing the reconcile's guess: told again, corrected
            # (time, duration, outcome), so apps and webhook consumers do not keep the guess.
            typed.append(CallEnded(record=_snapshot(record)))
    now = timezone.now()
    changed = []
    for uid, record in records.items():
        transitions.settle(record)
        if _state(record) != before[uid]:  # else a duplicate, or an event that tells nothing new
            record.updated_at = now
            changed.append(record)
    _write(changed)
    webhook_deliveries_create(events=typed)
    originate_outcomes_notify(events=typed)  # a facade waiting with wait=True learns it at the commit
    return typed


def _share(record: CallRecord, channel: str, records: dict):
    """A ;2 half the platform adopted after its start takes what its ;1 half knows: the pair
    was created together and is answered together (the ;1 answers when the ;2 does)."""
    name = _partner(channel)
    # The newest of that name: Asterisk numbers Local channels afresh after a restart.
    partner = max((r for r in records.values() if r.channel == name), key=lambda r: r.pk, default=None)
    if partner is None:
        return
    if partner.started_at:
        transitions.apply(record, Step.START, Facts(when=partner.started_at))
    if partner.answered_at:
        transitions.apply(record, Step.ANSWER, Facts(when=partner.answered_at))
    record.channel = record.channel or channel[:200]
    if partner.linkedid and record.linkedid in ("", record.uniqueid):
        record.linkedid = partner.linkedid
    record.caller = record.caller or partner.caller
    record.callee = record.callee or partner.callee


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


# A claim never sent is given up after this long; an Originate sent but not listed by the PBX
# is only settled once it has been quiet this long (Asterisk may still be creating its channel).
CLAIM_ABANDONED_AFTER = dt.timedelta(minutes=15)
ORIGINATE_GRACE = dt.timedelta(seconds=5)


@transaction.atomic
def call_records_reconcile(
    *,
    server_id: int,
    live_uniqueids: set[str],
    listed_at: dt.datetime,
    channels: Sequence[dict] = (),
    lease: Lease | None = None,
) -> list[CallEvent]:
    """Open records whose channel the PBX no longer lists ended unseen (a dropped connection, a PBX
    restart, an Originate whose answer never came): closed now, with what is known, in one batch.
    Records touched after the channels were listed, and Originates sent moments before, are left
    for the next round. The listed channels (CoreShowChannel frames) are legs still live: what the
    listing says of them fills what their records lack, for a call begun under another session.
    With `lease`, nothing is written unless it still holds the server."""
    if lease is not None:
        pbx_server_lease_check(lease=lease)
    typed = _listed(server_id=server_id, channels=channels)
    open_records = (
        CallRecord.objects.select_for_update()
        .filter(source=ami_source(server_id))
        .exclude(state=State.ENDED)
        .exclude(uniqueid__in=live_uniqueids)
        .filter(
            Q(state=State.CLAIMED, updated_at__lt=listed_at - CLAIM_ABANDONED_AFTER)
            | Q(state=State.SENT, updated_at__lt=listed_at - ORIGINATE_GRACE)
            | Q(state__in=[State.RINGING, State.ANSWERED], updated_at__lt=listed_at)
        )
        .order_by()
    )
    now = timezone.now()
    closed = []
    for record in open_records:
        if record.state == State.CLAIMED:
            facts = Facts(when=now, disposition=Disposition.FAILED, cause_text="never sent to the PBX")
            transitions.apply(record, Step.REFUSED, facts)
        else:
            transitions.apply(record, Step.LOST, Facts(when=now, cause_text=transitions.LOST_TEXT))
        transitions.settle(record)
        record.updated_at = now
        closed.append(record)
        typed.append(CallEnded(record=CallSnapshot.of(record)))
    _write(closed)
    webhook_deliveries_create(events=typed)
    if closed:
        log.warning("AMI server %s: %d call(s) ended unseen, closed on reconcile", server_id, len(closed))
    return typed


def _listed(*, server_id: int, channels: Sequence[dict]) -> list[CallEvent]:
    """Live channels as CoreShowChannels lists them: a leg the fold tracks (every channel but an
    untracked Local ;2 half) gets its record, and in it the channel, the parties, its start
    counted back from its age, and, when Up, an answer no later than the listing."""
    source = ami_source(server_id)
    listed = {f["Uniqueid"]: f for f in channels if f.get("Uniqueid") and f.get("Event") == "CoreShowChannel"}
    if not listed:
        return []
    CallRecord.objects.bulk_create(
        [
            CallRecord(source=source, server_id=server_id, uniqueid=uid, linkedid=uid)
            for uid, frame in listed.items()
            if not _local_two(frame.get("Channel", ""))
        ],
        ignore_conflicts=True,
    )
    records = CallRecord.objects.select_for_update().filter(source=source, uniqueid__in=listed).order_by()
    now = timezone.now()
    typed: list[CallEvent] = []
    changed = []
    for record in records:
        frame = listed[record.uniqueid]
        before, marks = _state(record), _marks(record)
        when = event_time(frame) if "_received" in frame else now
        _identify(record, frame, caller=True)
        record.callee = record.callee or _listed_callee(frame)
        # Whole seconds, counted back from a Ping a moment after the list: only where no event
        # told better (and never moving an earlier time: the clocks of two hosts may differ).
        age = _age(frame.get("Duration", ""))
        if age is not None and record.started_at is None:
            transitions.apply(record, Step.START, Facts(when=when - age))
        if frame.get("ChannelState") == "6" and record.answered_at is None:
            transitions.apply(record, Step.ANSWER, Facts(when=when))
        record.bridge_id = record.bridge_id or _text(frame, "BridgeId", 150).strip()
        transitions.settle(record)
        if _state(record) == before:
            continue
        record.updated_at = now
        changed.append(record)
        started, answered, _ = _marks(record)
        if started and not marks[0]:
            typed.append(CallStarted(record=CallSnapshot.of(record)))
        if answered and not marks[1]:
            typed.append(CallAnswered(record=CallSnapshot.of(record)))
    _write(changed)
    return typed


def _age(duration: str) -> dt.timedelta | None:
    """CoreShowChannel's Duration, HH:MM:SS since the channel was created."""
    parts = duration.strip().split(":")
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 6 for p in parts):
        return None
    hours, minutes, seconds = map(int, parts)
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _listed_callee(frame: dict) -> str:
    """Whom a listed leg calls: a Local channel's exten; else the connected line, when it is another
    party than the caller (an inbound leg's); else its extension, unless the dialplan's `s`."""
    channel = frame.get("Channel", "")
    if channel.startswith("Local/") and "@" in channel:
        return channel[len("Local/") : channel.index("@")][:80]
    connected, caller = frame.get("ConnectedLineNum", ""), frame.get("CallerIDNum", "")
    if connected not in _UNKNOWN and connected != caller:
        return connected[:80]
    exten = frame.get("Exten", "")
    return "" if exten in _UNKNOWN | {"s"} else exten[:80]
