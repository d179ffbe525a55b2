"""The dial-in (the seed's agi-CALLCARD_dial_in): the card and PIN check, lockouts against PIN
guessing, the card's one open call, and the billing at its end.

Sync services, called from the pbx process with ctx.db (fenced: they write) or ctx.read. A PIN is
compared by its keyed digest only and never logged, stored in a row or put in an error message.
"""

import dataclasses
import datetime as dt
import hmac
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from callcards import lifecycle, pins
from callcards.lifecycle import Status
from callcards.models import Card, CardBatch, CardCall, DialInFailure, Lockout, talk_minutes
from callcards.services.cards import card_status_set
from queues.services import handoff
from telephony.models import CallRecord
from telephony.services.calls import call_record_adopt

log = logging.getLogger(__name__)

APP = "callcards"


class Refusal:
    """Why a dial-in was refused (DialInFailure.reason, and what the script tells the caller)."""

    UNKNOWN_CARD = "unknown_card"
    WRONG_PIN = "wrong_pin"
    LOCKED = "locked"
    NOT_DIALABLE = "not_dialable"
    EMPTY = "empty"
    NO_QUEUE = "no_queue"
    IN_USE = "in_use"


# What PIN guessing looks like: these count towards a lockout; a void card or an empty one does not.
GUESSES = (Refusal.UNKNOWN_CARD, Refusal.WRONG_PIN)


@dataclasses.dataclass(frozen=True)
class DialIn:
    """A dial-in let in: the card's call, opened, and what the script sets on the channel."""

    card_call_id: int
    card_id: str
    company_id: int
    language: str
    balance_minutes: int
    warning_minutes: int
    queue: str


@dataclasses.dataclass(frozen=True)
class Refused:
    reason: str
    # The card's language, when the card is known and the PIN was right (a refusal after a good PIN
    # may be said in the card's language; before, it would tell a guesser the card exists).
    language: str = ""


def did_language(*, did: str) -> str:
    """The language of the cards printed with this DID, when they share one: the prompts before the
    card is known are said in it."""
    if not did:
        return ""
    languages = set(CardBatch.objects.filter(did=did[:18]).values_list("language", flat=True).distinct()[:2])
    return languages.pop() if len(languages) == 1 else ""


def _locked(*, kind: str, value: str, now: dt.datetime) -> bool:
    return (
        bool(value)
        and Lockout.objects.filter(kind=kind, value=value, until__gt=now, lifted_at__isnull=True).exists()
    )


def _failure(*, now: dt.datetime, phone: str, card_id: str, did: str, reason: str, card: Card | None) -> None:
    """Keep the failure; lock the caller's number, or the card, out once it has failed
    CALLCARDS_LOCKOUT_FAILURES times within CALLCARDS_LOCKOUT_SECONDS (counted since the last lift)."""
    DialInFailure.objects.create(at=now, phone_number=phone, card_id=card_id, inbound_did=did, reason=reason)
    if reason not in GUESSES:
        return
    window = dt.timedelta(seconds=settings.CALLCARDS_LOCKOUT_SECONDS)
    targets = [(Lockout.Kind.CALLER, phone, "phone_number", None)]
    if card is not None:
        targets.append((Lockout.Kind.CARD, card.card_id, "card_id", card.company_id))
    for kind, value, field, company_id in targets:
        if not value or _locked(kind=kind, value=value, now=now):
            continue
        since = now - window
        lifted = Lockout.objects.filter(kind=kind, value=value).aggregate(last=Max("lifted_at"))["last"]
        if lifted is not None and lifted > since:
            since = lifted
        failures = DialInFailure.objects.filter(**{field: value}, at__gt=since, reason__in=GUESSES).count()
        if failures >= settings.CALLCARDS_LOCKOUT_FAILURES:
            Lockout.objects.create(
                kind=kind,
                value=value,
                company_id=company_id,
                failures=failures,
                locked_at=now,
                until=now + window,
            )
            log.warning(
                "callcards: %s %s locked out until %s after %d failures",
                kind,
                value,
                (now + window).isoformat(timespec="seconds"),
                failures,
            )


@dataclasses.dataclass(frozen=True)
class Verified:
    """A card id and PIN that open a card that may be used now (dial_in_open makes sure, locked)."""

    card_pk: int


def _why_not(card: Card) -> str:
    """Why a card with the right PIN cannot take a call now, or ""."""
    if card.status not in lifecycle.DIALABLE:
        return Refusal.NOT_DIALABLE
    if card.balance_minutes <= 0:
        return Refusal.EMPTY
    if card.queue_id is None:
        return Refusal.NO_QUEUE
    return ""


def dial_in_verify(*, card_id: str, pin: str, phone_number: str = "") -> Verified | Refused:
    """The card and PIN check, a read (ctx.read: no write lock, so checks run side by side): a
    locked-out caller or card, an unknown card, a wrong PIN (by its keyed digest), a card not
    ACTIVE/USED, empty or without a queue are refused. A refusal is then kept with
    `dial_in_refused`; a card verified is opened with `dial_in_open`."""
    now = timezone.now()
    phone, card_id = phone_number[:40], card_id[:20]
    locks = Q(kind=Lockout.Kind.CARD, value=card_id)
    if phone:
        locks |= Q(kind=Lockout.Kind.CALLER, value=phone)
    if Lockout.objects.filter(locks, until__gt=now, lifted_at__isnull=True).exists():
        return Refused(Refusal.LOCKED)
    card = (
        Card.objects.filter(card_id=card_id)
        .only("pin_digest", "status", "balance_minutes", "queue_id", "language")
        .first()
    )
    if card is None:
        return Refused(Refusal.UNKNOWN_CARD)
    if not hmac.compare_digest(pins.pin_digest(pin), card.pin_digest):
        return Refused(Refusal.WRONG_PIN)
    reason = _why_not(card)
    return Refused(reason, card.language) if reason else Verified(card.pk)


def dial_in_refused(*, card_id: str, reason: str, phone_number: str = "", did: str = "") -> None:
    """Keep a refused dial-in (DialInFailure, and the log) and lock PIN guessing out."""
    now = timezone.now()
    phone, did, card_id = phone_number[:40], did[:40], card_id[:20]
    log.info("callcards: dial-in refused (%s) from %s on %s, card %s", reason, phone or "?", did, card_id)
    if reason == Refusal.LOCKED:
        return  # already locked: a guess more neither counts nor extends it
    card = Card.objects.filter(card_id=card_id).only("card_id", "company_id").first()
    _failure(now=now, phone=phone, card_id=card_id, did=did, reason=reason, card=card)


@transaction.atomic
def dial_in_open(
    *, server_id: int, uniqueid: str, card_pk: int, phone_number: str = "", did: str = ""
) -> DialIn | Refused:
    """Open the verified card's call on the caller's channel `uniqueid` and adopt the caller's leg
    for callcards; the card is locked and looked at again (it may have changed since the check).
    A card already on a call is refused (IN_USE), unless that call's caller is gone: it is billed
    first, so a process lost before billing never blocks a card."""
    now = timezone.now()
    phone, did = phone_number[:40], did[:40]
    # Locked first: a second dial-in on the same card waits here for the first one's transaction.
    card = Card.objects.select_for_update(of=("self",)).select_related("queue__company").get(pk=card_pk)
    reason = _why_not(card)
    if reason:  # changed since the check
        _failure(now=now, phone=phone, card_id=card.card_id, did=did, reason=reason, card=card)
        log.info(
            "callcards: dial-in from %s on %s refused: card %s %s", phone or "?", did, card.card_id, reason
        )
        return Refused(reason, card.language)
    for stale in CardCall.objects.filter(card=card).exclude(state=CardCall.State.BILLED):
        ended = CallRecord.objects.filter(server_id=stale.server_id, uniqueid=stale.uniqueid).exclude(
            ended_at=None
        )
        if ended.exists():
            _bill(stale.pk, card=card, end_reason="billed at the next dial-in")
    try:
        with transaction.atomic():
            card_call = CardCall.objects.create(
                company_id=card.company_id,
                card=card,
                uniqueid=uniqueid[:150],
                server_id=server_id,
                balance_minutes_start=card.balance_minutes,
                call_time=now,
                phone_number=phone,
                inbound_did=did,
                queue=card.queue.full_name[:130],
            )
    except IntegrityError:
        _failure(now=now, phone=phone, card_id=card.card_id, did=did, reason=Refusal.IN_USE, card=card)
        log.info("callcards: dial-in from %s on %s refused: card %s in use", phone or "?", did, card.card_id)
        return Refused(Refusal.IN_USE, card.language)
    call_record_adopt(
        server_id=server_id,
        uniqueid=uniqueid,
        company_id=card.company_id,
        app=APP,
        app_ref=str(card_call.pk),
    )
    log.info(
        "callcards: card %s let in from %s on %s, %d minutes, queue %s",
        card.card_id,
        phone or "?",
        did,
        card.balance_minutes,
        card_call.queue,
    )
    return DialIn(
        card_call_id=card_call.pk,
        card_id=card.card_id,
        company_id=card.company_id,
        language=card.language,
        balance_minutes=card.balance_minutes,
        warning_minutes=min(card.warning_minutes, card.balance_minutes),
        queue=card_call.queue,
    )


@transaction.atomic
def dial_in_check(
    *, server_id: int, uniqueid: str, card_id: str, pin: str, phone_number: str = "", did: str = ""
) -> DialIn | Refused:
    """The whole dial-in in one transaction: verify, then keep the refusal or open the call (the
    script runs the three steps apart, so that checks do not queue behind each other's writes)."""
    verified = dial_in_verify(card_id=card_id, pin=pin, phone_number=phone_number)
    if isinstance(verified, Refused):
        dial_in_refused(card_id=card_id, reason=verified.reason, phone_number=phone_number, did=did)
        return verified
    return dial_in_open(
        server_id=server_id, uniqueid=uniqueid, card_pk=verified.card_pk, phone_number=phone_number, did=did
    )


def _queue_call(card_call_id: int):
    """What the queues app knows of the card's call: its agent, when it answered, when it ended."""
    return handoff.queue_call(source_app=APP, source_ref=str(card_call_id))


def card_call_talking(
    *, card_call_id: int, agent_time: dt.datetime, agent_uniqueid: str = "", agent: str = ""
) -> bool:
    """The agent answered (the caller's leg was bridged with the agent's `agent_uniqueid`): the talk
    time counts from `agent_time`, the PBX's time of the bridge."""
    if not agent:
        found = _queue_call(card_call_id)
        agent = found.agent if found is not None else ""
    return (
        CardCall.objects.filter(pk=card_call_id, state=CardCall.State.QUEUED).update(
            state=CardCall.State.TALKING,
            agent_time=agent_time,
            agent_uniqueid=agent_uniqueid[:150],
            agent=agent[:130],
        )
        == 1
    )


@transaction.atomic
def card_call_bill(*, card_call_id: int, end_reason: str = "", ended_at: dt.datetime | None = None):
    """Bill a card's call, once (billing again changes nothing): talk seconds from the agent's answer
    to the end of the talk, capped at the limit the PBX enforced (the balance at the start), each
    started minute deducted from the card, USED on its first use and EMPTY at zero; the log row
    keeps the agent, the end's reason and the balance left. Returns the CardCall, or None."""
    card_id = CardCall.objects.filter(pk=card_call_id).values_list("card_id", flat=True).first()
    if card_id is None:
        return None
    card = Card.objects.select_for_update().get(pk=card_id)
    return _bill(card_call_id, card=card, end_reason=end_reason, ended_at=ended_at)


def _bill(card_call_id: int, *, card: Card, end_reason: str = "", ended_at: dt.datetime | None = None):
    """card_call_bill's work, in the caller's transaction, the card locked."""
    call = CardCall.objects.select_for_update().get(pk=card_call_id)
    if call.state == CardCall.State.BILLED:
        return call
    now = timezone.now()
    # Talk time is measured on one clock, the PBX's (its events' times on the legs' records): the
    # queue's rows are stamped by this machine's clock, which may differ.
    legs = {
        r.uniqueid: r
        for r in CallRecord.objects.filter(
            server_id=call.server_id, uniqueid__in=[call.uniqueid, call.agent_uniqueid or call.uniqueid]
        ).only("uniqueid", "bridged_at", "ended_at")
    }
    caller, agent_leg = legs.get(call.uniqueid), legs.get(call.agent_uniqueid)
    queued = _queue_call(call.pk)
    agent_time = call.agent_time or (caller.bridged_at if caller is not None else None)
    # The talk ends with the first of the two legs to go (the caller may go on in the dialplan).
    ends = [
        t for t in (ended_at, caller and caller.ended_at, agent_leg and agent_leg.ended_at) if t is not None
    ]
    end = min(ends) if ends else now
    limit = call.balance_minutes_start * 60
    seconds = max(0, round((end - agent_time).total_seconds())) if agent_time else 0
    capped = seconds >= limit
    seconds = min(seconds, limit)
    minutes = talk_minutes(seconds)
    balance = max(0, card.balance_minutes - minutes)
    if minutes:
        card.balance_minutes = balance
        card.save(update_fields=["balance_minutes", "updated_at"])
        if card.status == Status.ACTIVE and lifecycle.allowed(card.status, Status.USED, card.held_from):
            card_status_set(card=card, to=Status.USED, at=now, note=f"first call {call.pk}")
        if balance == 0 and lifecycle.allowed(card.status, Status.EMPTY, card.held_from):
            card_status_set(card=card, to=Status.EMPTY, at=now, note=f"used up by call {call.pk}")
    if not end_reason:
        end_reason = _end_reason(answered=agent_time is not None, capped=capped, queued=queued)
    agent = call.agent or (queued.agent if queued is not None else "")
    CardCall.objects.filter(pk=call.pk).update(
        state=CardCall.State.BILLED,
        agent_time=agent_time,
        agent=agent[:130],
        end_time=end,
        agent_talk_sec=seconds,
        agent_talk_min=minutes,
        balance_minutes_end=balance,
        end_reason=end_reason[:80],
    )
    call.refresh_from_db()
    log.info(
        "callcards: call %s on card %s billed: %d s, %d min, %d left (%s)",
        call.pk,
        card.card_id,
        seconds,
        minutes,
        balance,
        end_reason,
    )
    return call


def _end_reason(*, answered: bool, capped: bool, queued) -> str:
    if not answered:
        reason = queued.cancel_reason if queued is not None else ""
        return f"left the queue unanswered ({reason})" if reason else "ended before an agent answered"
    if capped:
        return "time limit"
    return "hung up"


def card_calls_orphaned(*, server_id: int) -> list[int]:
    """The server's open card calls whose caller's leg has ended (the pbx process was away)."""
    open_calls = CardCall.objects.filter(server_id=server_id).exclude(state=CardCall.State.BILLED)
    ended = set(
        CallRecord.objects.filter(server_id=server_id, uniqueid__in=open_calls.values("uniqueid"))
        .exclude(ended_at=None)
        .values_list("uniqueid", flat=True)
    )
    return [pk for pk, uniqueid in open_calls.values_list("pk", "uniqueid") if uniqueid in ended]
