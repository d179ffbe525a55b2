"""A request's progress as the visitor's banner says it: words, never the number or the name.

While a try is dialing, its legs' call records (folded from the PBX's events) tell which
party is ringing: the first leg's record has the attempt's channel id as its Uniqueid, the
second leg the same Linkedid.
"""

import dataclasses

from click2call.models import CallAttempt, CallRequest, Campaign
from telephony.models import CallRecord

WAITING = "waiting"
RETRY_SOON = "waiting to try again"
CALLING_YOU = "calling you"
CALLING_COMPANY = "calling the company"
CONNECTED = "connected"
COMPLETED = "completed"
FAILED_YOU = "failed: you did not answer"
FAILED_COMPANY = "failed: the company did not answer"
NOT_DIALED = "not dialed: the company's line was unavailable"

FINISHED_WORDS = {
    CallAttempt.Status.COMPLETED: COMPLETED,
    CallAttempt.Status.FAILED_USER: FAILED_YOU,
    CallAttempt.Status.FAILED_COMPANY: FAILED_COMPANY,
    CallAttempt.Status.NOT_DIALED: NOT_DIALED,
}


@dataclasses.dataclass(frozen=True)
class AttemptProgress:
    seq: int
    kind: str
    status: str
    progress: str


@dataclasses.dataclass(frozen=True)
class RequestProgress:
    status: str
    final: bool
    progress: str
    tries: int
    attempts: list[AttemptProgress]


def request_progress(*, request: CallRequest) -> RequestProgress:
    attempts = [
        AttemptProgress(a.seq, a.kind, a.status, FINISHED_WORDS.get(a.status) or _dialing_words(a))
        for a in request.attempts.all()
    ]
    if request.status == CallRequest.Status.DIALING and attempts:
        words = attempts[-1].progress
    elif request.status == CallRequest.Status.PENDING:
        words = RETRY_SOON if attempts else WAITING
    else:
        words = FINISHED_WORDS.get(request.status, CALLING_YOU)
    return RequestProgress(request.status, not request.is_open, words, request.tries, attempts)


def _dialing_words(attempt: CallAttempt) -> str:
    visitor_first = attempt.first_party == Campaign.FirstParty.VISITOR
    first, second = (CALLING_YOU, CALLING_COMPANY) if visitor_first else (CALLING_COMPANY, CALLING_YOU)
    legs = list(
        CallRecord.objects.filter(linkedid=attempt.channel_id).only("uniqueid", "state", "answered_at")
    )
    first_answered = any(leg.uniqueid == attempt.channel_id and leg.answered_at for leg in legs)
    if not first_answered:
        return first
    if any(leg.uniqueid != attempt.channel_id and leg.answered_at for leg in legs):
        return CONNECTED
    return second
