"""A caller's call to a ticket line, as the pbx process drives it (tickets/pbx.py).

The FastAGI script `ticket` opens the call (ticket_call_open); [platform-ticket] runs the script
`ticket-hop` before each hop (ticket_hop_next: the previous hop closed with its DIALSTATUS, the next
technician of the hunt, a ticket number of its own); the end (the dialplan's TicketEnd UserEvent, or
the caller leg's CallEnded as a backstop) runs ticket_call_end once, which writes the SMS and the IM
in the same transaction. Each is one transaction, called through ctx.db.
"""

import dataclasses
import datetime as dt
import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from telephony.handle import dial_string
from telephony.models import CallRecord
from telephony.services.calls import call_record_adopt
from tickets import selectors
from tickets.models import Technician, TicketCall, TicketHop, TicketLine, TicketMessage
from tickets.services.messages import ticket_messages_queue
from tickets.services.numbers import ticket_number_allocate

log = logging.getLogger(__name__)

APP = "tickets"

# What [platform-ticket] says in TICKET_STAGE when the call ends (the TicketEnd UserEvent).
STAGE_ANNOUNCE = "announce"
STAGE_CONFIRM = "confirm"
STAGE_UNCONFIRMED = "unconfirmed"
STAGE_HUNT = "hunt"
STAGE_NOBODY = "nobody"
STAGE_UNAVAILABLE = "unavailable"
# A hop whose technician has nothing dialable is closed at once with Dial's word for it.
UNDIALABLE = "CHANUNAVAIL"


@dataclasses.dataclass(frozen=True)
class OpenedCall:
    call_id: int
    announcement: str  # a sound name, or the uploaded file's absolute path without its extension
    confirm_digit: str
    confirm_seconds: int


@dataclasses.dataclass(frozen=True)
class NextHop:
    """The hop to ring now; dial empty: the hunt is over."""

    ticket: int | None = None
    sequence: int = 0
    dial: str = ""
    ring_seconds: int = 0
    recording: str = ""  # absolute path: start MixMonitor to it (first hop only)


def ticket_line_for(*, server_id: int, did: str) -> int | None:
    """The active line of this server whose number is the DID dialed (a read)."""
    return (
        TicketLine.objects.filter(server_id=server_id, number=did, active=True)
        .values_list("pk", flat=True)
        .first()
    )


@transaction.atomic
def ticket_call_open(*, server_id: int, uniqueid: str, line_id: int, caller: str, called: str) -> OpenedCall:
    """Open the call on the caller's channel and adopt its leg for the tickets app (a second run on
    the same channel opens nothing new)."""
    line = TicketLine.objects.select_related("company").get(pk=line_id)
    call, _ = TicketCall.objects.get_or_create(
        server_id=server_id,
        uniqueid=uniqueid[:150],
        defaults={
            "line": line,
            "caller": caller[:40],
            "called": called[:20],
            "started_at": timezone.now(),
        },
    )
    call_record_adopt(
        server_id=server_id, uniqueid=uniqueid, company_id=line.company_id, app=APP, app_ref=str(call.pk)
    )
    if line.announcement_file:
        announcement = str(Path(line.announcement_file.path).with_suffix(""))
    else:
        announcement = line.announcement_sound
    return OpenedCall(
        call_id=call.pk,
        announcement=announcement,
        confirm_digit=line.confirm_digit,
        confirm_seconds=line.confirm_seconds,
    )


def hunt_order(*, line: TicketLine) -> list[Technician]:
    """The technicians one round rings, by the rule the portal shows (tickets.selectors.hunt_order)."""
    return selectors.hunt_order(line=line, technicians=list(line.technicians.all())).technicians


def _hunt_length(line: TicketLine, order: list[Technician]) -> int:
    return len(order) * (line.rounds if line.wrap else 1)


def _dial(line: TicketLine, technician: Technician) -> str:
    """The internal phone and the mobile joined with & (rung together); a part given as a dial
    string (it has a /) as it is, a number through the line's route. A part that cannot be dialed
    is left out, with a log line."""
    parts = []
    for number in (technician.internal, technician.mobile):
        if not number:
            continue
        try:
            part = (
                number if "/" in number else dial_string(server=line.server, number=number, route=line.route)
            )
        except ValueError as exc:
            log.warning("tickets: line %s, %s: %s", line.pk, technician.name, exc)
            continue
        if any(c in part for c in ",&|"):  # would split Dial's arguments or destinations
            log.warning("tickets: line %s, %s: %r cannot be dialed", line.pk, technician.name, part)
            continue
        parts.append(part)
    return "&".join(parts)


def _recording_path(call: TicketCall, ticket: int) -> tuple[str, str]:
    """(relative path, note): where the call is recorded, or why it is not."""
    line = call.line
    now = timezone.localtime(timezone.now(), line.company.tzinfo)
    relative = Path(line.company.slug) / f"{now:%Y}" / f"{now:%m}" / f"ticket-{line.pk}-{ticket}.wav"
    folder = Path(settings.TICKETS_RECORDING_DIR) / relative.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return "", f"not recorded: cannot create {folder}: {exc.strerror or exc}"[:200]
    if not os.access(folder, os.W_OK | os.X_OK):
        return "", f"not recorded: {folder} is not writable"[:200]
    return str(relative), ""


def _close(hop: TicketHop, *, dial_status: str, now: dt.datetime) -> None:
    if hop.ended_at is not None:
        return
    hop.ended_at = now
    hop.dial_status = dial_status[:20]
    hop.answered = dial_status == "ANSWER"
    hop.save(update_fields=["ended_at", "dial_status", "answered"])


@transaction.atomic
def ticket_hop_next(*, call_id: int, uniqueid: str, dial_status: str = "") -> NextHop:
    """Close the call's previous hop with its DIALSTATUS and open the next one: the next technician
    of the hunt and a ticket number taken in this transaction. The hunt over: an empty NextHop."""
    # Only the call's row: its line is locked by the ticket number's UPDATE, and the server's row is
    # the lease's (locking them here too deadlocks concurrent hops on PostgreSQL).
    call = (
        TicketCall.objects.select_for_update(of=("self",))
        .select_related("line__company", "line__server")
        .get(pk=call_id)
    )
    if call.uniqueid != uniqueid:
        raise ValueError(f"ticket call {call_id} is not on channel {uniqueid}")
    if call.state in TicketCall.ENDED:
        return NextHop()
    now = timezone.now()
    line = call.line
    previous = call.hops.order_by("-sequence").first()
    if previous is not None:
        _close(previous, dial_status=dial_status, now=now)
    if call.state == TicketCall.State.ANNOUNCING:
        call.state, call.confirmed_at = TicketCall.State.HUNTING, now
        call.save(update_fields=["state", "confirmed_at"])
    order = hunt_order(line=line)
    length = _hunt_length(line, order)
    sequence = previous.sequence if previous else 0
    while sequence < length:
        sequence += 1
        technician = order[(sequence - 1) % len(order)]
        ticket = ticket_number_allocate(line_id=line.pk)
        hop = TicketHop.objects.create(
            call=call,
            line=line,
            ticket=ticket,
            sequence=sequence,
            technician=technician,
            technician_name=technician.name,
            called=technician.internal[:120],
            started_at=now,
        )
        dial = _dial(line, technician)
        if not dial:
            _close(hop, dial_status=UNDIALABLE, now=now)
            continue
        recording = ""
        # Once, at the first hop dialed (an undialable first technician is no reason to go unrecorded).
        if line.record and not call.recording and not call.recording_note:
            relative, note = _recording_path(call, ticket)
            call.recording, call.recording_note = relative, note
            call.save(update_fields=["recording", "recording_note"])
            if note:
                log.warning("tickets: call %s: %s", call.pk, note)
            else:
                recording = str(Path(settings.TICKETS_RECORDING_DIR) / relative)
        return NextHop(
            ticket=ticket, sequence=sequence, dial=dial, ring_seconds=line.ring_seconds, recording=recording
        )
    return NextHop()


def _ended_state(call: TicketCall, stage: str, hop: TicketHop | None) -> tuple[str, str]:
    """(state, note) of an ended call from the dialplan's last stage."""
    State = TicketCall.State
    if stage == STAGE_UNCONFIRMED:
        return State.UNCONFIRMED, "not confirmed: the caller keyed another digit or nothing, twice"
    if stage == STAGE_UNAVAILABLE:
        return State.FAILED, "the pbx process could not be reached for the next hop"
    if hop is None:
        if stage == STAGE_NOBODY:
            return State.NOBODY, "no technician active"
        if call.state == State.HUNTING:
            return State.FAILED, "the call ended before its first hop"
        return State.ABANDONED, "the caller hung up before confirming"
    if hop.answered:
        return State.ANSWERED, f"answered by {hop.technician_name}"
    if stage == STAGE_NOBODY:
        return State.NOBODY, f"nobody answered in {hop.sequence} hop(s)"
    return State.ABANDONED, f"the caller hung up while {hop.technician_name} was rung"


def _ended_unheard(
    call: TicketCall, hop: TicketHop | None, record: CallRecord | None, now: dt.datetime
) -> tuple[str, str]:
    """(state, note) of a call that ended without its TicketEnd (the pbx process was away, or the
    event was lost): the caller's call record tells whether the last hop was answered (bridged)."""
    bridged = record is not None and record.bridged_at is not None
    if hop is None:
        if call.state == TicketCall.State.ANNOUNCING:
            return TicketCall.State.ABANDONED, "the caller hung up before confirming"
        return TicketCall.State.FAILED, "the call ended before its first hop"
    _close(hop, dial_status="ANSWER" if bridged else "", now=now)
    if hop.answered:
        return TicketCall.State.ANSWERED, f"answered by {hop.technician_name}"
    return TicketCall.State.FAILED, (
        f"ended while {hop.technician_name} was rung, unheard by the platform (the pbx process was away)"
    )


@transaction.atomic
def ticket_call_end(
    *,
    call_id: int,
    uniqueid: str = "",
    stage: str = "",
    dial_status: str = "",
    ticket: str | None = None,
    ended_at: dt.datetime | None = None,
) -> dict[str, int]:
    """End the call once: its last hop closed, the hop it ended at marked last (`_END`), the state
    and note, then that hop's technician's SMS and IM written (ticket_messages_queue). Without a
    stage (the caller leg's CallEnded, when the dialplan's TicketEnd never came) the caller's call
    record tells whether the last hop was answered. Returns the messages written, by channel; a
    second end writes nothing. A report from a channel (`uniqueid`) that is not the call's ends
    nothing; `ticket` is the one the dialplan last had (TicketEnd's Ticket)."""
    call = TicketCall.objects.select_for_update(of=("self",)).select_related("line").get(pk=call_id)
    if uniqueid and uniqueid != call.uniqueid:
        log.warning("tickets: TicketEnd of call %s from channel %s, not its own: ignored", call_id, uniqueid)
        return {}
    if call.state in TicketCall.ENDED:
        return {}
    now = ended_at or timezone.now()
    hop = call.hops.order_by("-sequence").first()
    last = hop
    if stage:
        if hop is not None:
            # The hop a hunt ended on was closed by the hop script already: its DIALSTATUS stands.
            # A hop whose script was cut short before the dialplan had its ticket was never dialed:
            # the call ended at the hop the dialplan last had (none: nobody was rung), whose
            # technician gets the messages.
            dialed = not (stage == STAGE_UNAVAILABLE and ticket is not None and ticket != str(hop.ticket))
            _close(hop, dial_status=(dial_status or "CANCEL") if dialed else "", now=now)
            if not dialed:
                last = call.hops.filter(ticket=int(ticket)).first() if ticket.isdigit() else None
        state, note = _ended_state(call, stage, hop)
    else:
        record = CallRecord.objects.filter(server_id=call.server_id, uniqueid=call.uniqueid).first()
        if ended_at is None and record is not None and record.ended_at is not None:
            now = record.ended_at
        state, note = _ended_unheard(call, hop, record, now)
    if last is not None:
        last.last = True
        last.save(update_fields=["last"])
    call.state, call.note = state, note
    call.ended_at = now
    call.answered_by_id = hop.technician_id if hop is not None and hop.answered else None
    call.save(update_fields=["state", "note", "ended_at", "answered_by"])
    log.info("tickets: call %s on line %s ended: %s", call.pk, call.line_id, call.note)
    return ticket_messages_queue(call_id=call.pk)


def ticket_calls_orphaned(*, server_id: int) -> list[int]:
    """The server's calls not ended whose caller's leg has (the pbx process was away at the end)."""
    open_calls = TicketCall.objects.filter(server_id=server_id).exclude(state__in=TicketCall.ENDED)
    ended = set(
        CallRecord.objects.filter(server_id=server_id, uniqueid__in=open_calls.values("uniqueid"))
        .exclude(ended_at=None)
        .values_list("uniqueid", flat=True)
    )
    return [pk for pk, uniqueid in open_calls.values_list("pk", "uniqueid") if uniqueid in ended]


# -- the IM ---------------------------------------------------------------------------------------

IM_CLAIM_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class ImToSend:
    message_id: int
    to: str
    body: str


def ticket_ims_pending(*, server_id: int) -> list[int]:
    """The IMs of this server's calls still to send (a process died between the end and the send)."""
    return list(
        TicketMessage.objects.filter(
            call__server_id=server_id, channel=TicketMessage.Channel.IM, state=TicketMessage.State.PENDING
        ).values_list("pk", flat=True)
    )


def ticket_im_claim(*, message_id: int) -> ImToSend | None:
    """Claim a pending IM for sending (a conditional update): None when another sender has it, or
    it is sent already; the claim lapses after IM_CLAIM_SECONDS for a sender that died."""
    now = timezone.now()
    due = Q(next_try_at=None) | Q(next_try_at__lte=now)
    claimed = (
        TicketMessage.objects.filter(due, pk=message_id, state=TicketMessage.State.PENDING)
        .filter(channel=TicketMessage.Channel.IM)
        .update(next_try_at=now + dt.timedelta(seconds=IM_CLAIM_SECONDS), attempts=F("attempts") + 1)
    )
    if claimed != 1:
        return None
    to, body = TicketMessage.objects.values_list("to", "body").get(pk=message_id)
    return ImToSend(message_id=message_id, to=to, body=body)


def ticket_im_result(*, message_id: int, error: str = "", answer: str = "", retry: bool = False) -> None:
    """Keep what Asterisk answered the IM's MessageSend: sent, failed with its answer, or (retry: the
    PBX could not be reached) pending for the next start."""
    now = timezone.now()
    messages = TicketMessage.objects.filter(pk=message_id, state=TicketMessage.State.PENDING)
    if retry:
        messages.update(next_try_at=None, last_error=error[:300])
    elif error:
        messages.update(
            state=TicketMessage.State.FAILED,
            last_error=error[:300],
            delivery_status=error[:40],
            delivery_at=now,
        )
    else:
        messages.update(
            state=TicketMessage.State.SENT, sent_at=now, delivery_status=answer[:40], delivery_at=now
        )
