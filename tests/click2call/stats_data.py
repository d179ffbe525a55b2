"""Crafted click2call history for the statistics' tests: requests made at a given time, each with
its attempts and their legs as the telephony layer records them (app "click2call", app_ref
"attempt:<id>", the dialed legs children of the originated one)."""

import datetime as dt

from click2call.models import CallAttempt, CallRequest, Campaign
from telephony.models import CallRecord
from tests.click2call.factories import CallAttemptFactory, CallRequestFactory
from tests.telephony.factories import CallRecordFactory

VISITOR, COMPANY = Campaign.FirstParty.VISITOR, Campaign.FirstParty.COMPANY


def leg(attempt: CallAttempt, *, at: dt.datetime, ring: int | None, talk: int = 0, parent=None):
    """A leg that rang `ring` seconds and was answered (talk seconds), or never answered (ring None)."""
    answered = ring is not None
    ended = at + dt.timedelta(seconds=(ring or 20) + talk)
    return CallRecordFactory(
        company_id=attempt.request.company_id,
        app="click2call",
        app_ref=attempt.app_ref,
        parent=parent,
        started_at=at,
        answered_at=at + dt.timedelta(seconds=ring) if answered else None,
        ended_at=ended,
        duration=(ring or 20) + talk,
        billsec=talk if answered else 0,
        state=CallRecord.State.ENDED,
        disposition=CallRecord.Disposition.ANSWERED if answered else CallRecord.Disposition.NO_ANSWER,
    )


def request_at(campaign, at: dt.datetime, status=CallRequest.Status.COMPLETED, **fields) -> CallRequest:
    request = CallRequestFactory(campaign=campaign, status=status, **fields)
    # created_at is auto_now_add: set it afterwards, as the request would have been made then.
    CallRequest.objects.filter(pk=request.pk).update(created_at=at)
    request.created_at = at
    return request


def attempt_with_legs(
    request: CallRequest,
    *,
    first_party=VISITOR,
    first_ring: int | None = 3,
    second_rings: tuple = (),
    talk: int = 0,
    status=CallAttempt.Status.COMPLETED,
) -> CallAttempt:
    """An attempt whose first leg rang `first_ring` s (None: unanswered) and whose dialed legs rang
    `second_rings` (None: unanswered); the last answered dialed leg talked `talk` s, and so did the
    first leg from its answer."""
    attempt = CallAttemptFactory(request=request, first_party=first_party, status=status)
    at = request.created_at + dt.timedelta(seconds=5)
    first = leg(attempt, at=at, ring=first_ring, talk=talk if first_ring is not None else 0)
    dialed_at = at + dt.timedelta(seconds=first_ring or 0)
    for ring in second_rings:
        leg(attempt, at=dialed_at, ring=ring, talk=talk if ring else 0, parent=first)
    return attempt
