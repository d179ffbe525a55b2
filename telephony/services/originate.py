"""The claim that stands between a task and a second ring.

A call record is claimed (unique per server and ChannelId) before its Originate
is sent, marked sent by a conditional update just before the Originate is
written, and settled by the PBX's events. A retry of a claim that was never
sent sends it with the same ChannelId; a retry of one that was sent gets
OriginateAlreadyClaimed, never a second Originate.
"""

from django.db import transaction
from django.utils import timezone

from accounts.models import Company
from telephony import transitions
from telephony.models import CallRecord, PbxServer
from telephony.services.servers import ami_source
from telephony.transitions import Facts, Step

State = CallRecord.State


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
) -> CallRecord:
    """Reserve the record of a call about to be originated with ChannelId `uniqueid`; `linkedid`
    names the call it is a leg of, when the platform originates it for a call already going on (an
    agent rung for a queue caller): Asterisk starts a new Linkedid for every Originate.

    A claim never sent (the worker died before sending, the PBX was unreachable) is handed back
    for sending; one already sent raises OriginateAlreadyClaimed with the existing record.
    """
    record, created = CallRecord.objects.get_or_create(
        source=ami_source(server),
        uniqueid=uniqueid,
        defaults={
            "server": server,
            "linkedid": linkedid or uniqueid,
            "company": company,
            "app": app,
            "app_ref": app_ref,
            "caller": caller,
            "callee": callee,
            "direction": direction,
            "state": State.CLAIMED,
        },
    )
    if created or record.state == State.CLAIMED:
        return record
    raise OriginateAlreadyClaimed(uniqueid, record)


def call_record_send(*, record_id: int):
    """Mark a claim sent, right before its Originate is written: of two senders, one wins."""
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
