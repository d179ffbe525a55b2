"""The one table a call record's state changes by: every (state, step) pair."""

import datetime as dt

import pytest

from telephony.models import CallRecord
from telephony.transitions import Facts, SendRefused, Step, apply, next_state

C, S, R, A, E = "claimed", "sent", "ringing", "answered", "ended"
STATES = [C, S, R, A, E]

# Rows: the state before; columns: the step; cells: the state after (None: refused).
TABLE = {
    #            SEND  UNSENT REFUSED START OUTCOME ANSWER END  LOST
    C: dict(zip(Step, [S, C, E, R, C, A, E, E], strict=True)),
    S: dict(zip(Step, [None, C, E, R, S, A, E, E], strict=True)),
    R: dict(zip(Step, [None, R, E, R, R, A, E, E], strict=True)),
    A: dict(zip(Step, [None, A, E, A, A, A, E, E], strict=True)),
    E: dict(zip(Step, [None, E, E, E, E, E, E, E], strict=True)),
}


def test_the_table_names_every_step_in_order():
    assert list(Step) == [
        Step.SEND,
        Step.UNSENT,
        Step.REFUSED,
        Step.START,
        Step.OUTCOME,
        Step.ANSWER,
        Step.END,
        Step.LOST,
    ]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("step", list(Step))
def test_next_state(state, step):
    expected = TABLE[state][step]
    if expected is None:
        with pytest.raises(SendRefused):
            next_state(state, step)
    else:
        assert next_state(state, step) == expected


T0 = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)


def at(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def test_late_answer_of_an_ended_leg_keeps_it_ended_and_answered():
    record = CallRecord(state=S)
    apply(record, Step.END, Facts(when=at(30), cause=16))
    apply(record, Step.ANSWER, Facts(when=at(10)))  # the answer's event came last
    assert (record.state, record.started_at, record.answered_at, record.ended_at) == (
        E,
        at(10),
        at(10),
        at(30),
    )


def test_times_are_monotonic_whatever_order_and_repeats():
    record = CallRecord(state=S)
    for step, when in [(Step.END, 30), (Step.START, 5), (Step.START, 0), (Step.END, 20), (Step.ANSWER, 8)]:
        apply(record, step, Facts(when=at(when)))
    assert (record.started_at, record.answered_at, record.ended_at) == (at(0), at(8), at(30))


def test_an_outcome_only_gets_stronger_and_a_cause_out_of_range_is_ignored():
    record = CallRecord(state=R)
    apply(record, Step.OUTCOME, Facts(disposition="BUSY"))
    apply(record, Step.OUTCOME, Facts(disposition="NO ANSWER"))
    apply(record, Step.END, Facts(when=at(1), cause=999, cause_text="x" * 100))
    assert (record.disposition, record.hangup_cause, len(record.hangup_cause_text)) == ("BUSY", None, 80)
