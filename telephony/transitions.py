"""How a call record changes state: the one table every writer goes through.

A record is claimed before its Originate is sent (so nobody is rung twice),
sent once the Originate is written to the PBX, ringing once the channel exists,
answered, and ended. Events may come twice or out of order, so every step is
monotonic: times keep their earliest start and answer and their latest end, the
disposition only gets stronger, and the state never goes back, except that an
Originate that could not be written (the PBX was unreachable) returns the
record to claimed, so a retry sends it with the same ChannelId.

An end the reconcile guessed (LOST: the PBX no longer listed the channel) is no
evidence: the real Hangup, or Cdr, that arrives later replaces its time and
outcome, even when it is earlier.
"""

import dataclasses
import datetime as dt
import enum

from telephony.models import CallRecord

State = CallRecord.State
Disposition = CallRecord.Disposition


class Step(enum.StrEnum):
    SEND = "send"  # the Originate is about to be written to the PBX
    UNSENT = "unsent"  # it could not be written: the PBX was not connected
    REFUSED = "refused"  # Asterisk refused it, or it surely never ran
    START = "start"  # the channel exists: Newchannel, DialBegin, a pushed ringing
    OUTCOME = "outcome"  # a disposition without a time of its own: DialEnd, Cdr
    ANSWER = "answer"
    END = "end"
    LOST = "lost"  # the PBX no longer lists a channel whose end we never saw


class SendRefused(Exception):
    """The record is not claimed any more: its Originate was sent (or settled) already."""


_ORDER = [State.CLAIMED, State.SENT, State.RINGING, State.ANSWERED, State.ENDED]
_TARGET = {
    Step.SEND: State.SENT,
    Step.REFUSED: State.ENDED,
    Step.START: State.RINGING,
    Step.ANSWER: State.ANSWERED,
    Step.END: State.ENDED,
    Step.LOST: State.ENDED,
}

# A leg answered at any time stays ANSWERED, whatever a forked Cdr says later.
_RANK = {
    Disposition.PENDING: 0,
    Disposition.FAILED: 1,
    Disposition.NO_ANSWER: 2,
    Disposition.BUSY: 3,
    Disposition.ANSWERED: 4,
}
# Q.850 causes of a leg that ended unanswered with nothing better known.
_CAUSE_DISPOSITION = {
    17: Disposition.BUSY,
    18: Disposition.NO_ANSWER,
    19: Disposition.NO_ANSWER,
    16: Disposition.NO_ANSWER,
}
LOST_TEXT = "ended while the PBX was unreachable"


def next_state(state: str, step: Step) -> str:
    """The state after `step`. SEND is allowed from CLAIMED only; the rest never go back."""
    if step == Step.SEND:
        if state != State.CLAIMED:
            raise SendRefused(state)
        return State.SENT
    if step == Step.UNSENT:
        return State.CLAIMED if state == State.SENT else state
    if step == Step.OUTCOME:
        return state
    target = _TARGET[step]
    return target if _ORDER.index(target) > _ORDER.index(state) else state


@dataclasses.dataclass(frozen=True)
class Facts:
    """What one event tells about a leg."""

    when: dt.datetime | None = None
    disposition: str | None = None
    cause: int | None = None
    cause_text: str | None = None


def _earliest(current, candidate):
    return candidate if current is None or (candidate is not None and candidate < current) else current


def _latest(current, candidate):
    return candidate if current is None or (candidate is not None and candidate > current) else current


def stronger(current: str, candidate: str) -> str:
    return candidate if _RANK[candidate] > _RANK[current] else current


def end_guessed(record: CallRecord) -> bool:
    """The record's end is the reconcile's time, not Asterisk's (no Hangup or Cdr seen since)."""
    guessed = record.hangup_cause is None and record.hangup_cause_text == LOST_TEXT
    return record.ended_at is not None and guessed


def apply(record: CallRecord, step: Step, facts: Facts = Facts()) -> None:
    """Apply one step to a record in memory: times, outcome, cause, state. The caller settles
    (once per batch, so a batch's result does not depend on the order of its events) and saves."""
    when = facts.when
    if step == Step.END and when is not None and end_guessed(record):
        # Asterisk's own end replaces the guess, whichever is later; so does the outcome the
        # guess's settle derived (FAILED from nothing known), but not one the PBX told (a DialEnd's
        # CHANUNAVAIL is a real FAILED).
        record.ended_at = None
        record.hangup_cause_text = ""
        if record.outcome_guessed:
            record.disposition = Disposition.PENDING
            record.outcome_guessed = False
    if step in (Step.START, Step.ANSWER, Step.END, Step.LOST, Step.REFUSED):
        record.started_at = _earliest(record.started_at, when)
    if step == Step.ANSWER:
        record.answered_at = _earliest(record.answered_at, when)
    if step in (Step.END, Step.LOST, Step.REFUSED):
        record.ended_at = _latest(record.ended_at, when)
    if facts.disposition:
        record.disposition = stronger(record.disposition, facts.disposition)
        record.outcome_guessed = False  # the PBX's word (or at least not the guess's)
    if facts.cause is not None and 0 <= facts.cause <= 255:  # a Q.850 cause
        record.hangup_cause = facts.cause
    if facts.cause_text is not None:
        record.hangup_cause_text = facts.cause_text[:80]
    record.state = next_state(record.state, step)
    # A late answer (reordered events) still makes an ended leg ANSWERED; a time decides the state too.
    for reached, time in ((State.RINGING, record.started_at), (State.ANSWERED, record.answered_at)):
        if time is not None and _ORDER.index(record.state) < _ORDER.index(reached):
            record.state = reached
    if record.ended_at is not None:
        record.state = State.ENDED


def settle(record: CallRecord) -> None:
    """Derived fields: durations in whole seconds (truncated, as Asterisk's CDRs), final disposition."""
    if record.ended_at and record.started_at:
        record.duration = max(0, int((record.ended_at - record.started_at).total_seconds()))
    if record.ended_at and record.answered_at:
        record.billsec = max(0, int((record.ended_at - record.answered_at).total_seconds()))
    if record.answered_at:
        record.disposition = Disposition.ANSWERED
        record.outcome_guessed = False
    elif record.ended_at and record.disposition == Disposition.PENDING:
        record.disposition = _CAUSE_DISPOSITION.get(record.hangup_cause, Disposition.FAILED)
        record.outcome_guessed = end_guessed(record)
