"""Typed call events: what the apps of the pbx process are told about their calls.

The fold publishes them after its transaction commits, in order per call. Each
carries the call record as it was at that transition (a `CallSnapshot`), so an
app sees what the database holds, and a webhook delivery carries the same.
"""

import dataclasses
import datetime as dt
import operator

from telephony.models import CallRecord


@dataclasses.dataclass(frozen=True)
class CallSnapshot:
    id: int
    uniqueid: str
    linkedid: str
    parent_id: int | None
    server_id: int | None
    company_id: int | None
    app: str
    app_ref: str
    channel: str
    caller: str
    callee: str
    direction: str
    state: str
    started_at: dt.datetime | None
    answered_at: dt.datetime | None
    bridged_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration: int
    billsec: int
    disposition: str
    bridge_id: str
    hangup_cause: int | None
    hangup_cause_text: str

    @classmethod
    def of(cls, record: CallRecord) -> "CallSnapshot":
        return cls(*_snapshot_values(record))


# The fields' values in their order: one C call, not a getattr each (the fold makes thousands).
_snapshot_values = operator.attrgetter(*(field.name for field in dataclasses.fields(CallSnapshot)))


@dataclasses.dataclass(frozen=True)
class CallEvent:
    """Base of the typed events; `record` is the leg as committed at this transition."""

    record: CallSnapshot

    # The name a webhook delivery carries (asterCC's ringing/answer/hangup), or "" for none.
    webhook_event = ""

    @property
    def app(self) -> str:
        return self.record.app


@dataclasses.dataclass(frozen=True)
class CallStarted(CallEvent):
    """The leg's channel exists: it is ringing (or, inbound, has arrived)."""

    webhook_event = "ringing"


@dataclasses.dataclass(frozen=True)
class OriginateResult(CallEvent):
    """Asterisk's verdict on an Originate: outcome is answered, no_answer, busy, congestion or failed."""

    reason: int = 0
    outcome: str = "failed"

    @property
    def app_ref(self) -> str:
        return self.record.app_ref


@dataclasses.dataclass(frozen=True)
class CallAnswered(CallEvent):
    webhook_event = "answer"


@dataclasses.dataclass(frozen=True)
class CallBridged(CallEvent):
    """The leg joined a bridge where `other` (another leg's snapshot) already was."""

    other: CallSnapshot | None = None


@dataclasses.dataclass(frozen=True)
class CallEnded(CallEvent):
    """The leg is over: record.disposition, hangup_cause, duration and billsec are final."""

    webhook_event = "hangup"
