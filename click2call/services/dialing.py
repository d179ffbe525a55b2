"""Attempts: each one claimed before its first leg is originated, so nobody is rung twice.

An attempt is the first party originated into the contract's [platform-click2call] (the
visitor by default, the company for campaigns set so and for call backs), which plays the
campaign's message and dials the second party. Its outcome comes back to the pbx process
(click2call.pbx) and ends here, in `attempt_finish`, which schedules the next automatic try
or leaves the request FAILED_* for the portal's call back.
"""

import datetime as dt
import logging
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from click2call.models import CallAttempt, CallRequest, Campaign, CampaignOperator
from click2call.services.rating import NumberRefused, number_rate_check, operator_number_check
from telephony.ami import AmiError
from telephony.facade import facade
from telephony.handle import dial_string
from telephony.models import CallRecord
from telephony.services.originate import OriginateAlreadyClaimed, call_record_claim, call_record_give_up

logger = logging.getLogger(__name__)

Status = CallRequest.Status
AttemptStatus = CallAttempt.Status
FirstParty = Campaign.FirstParty

CONTEXT = "platform-click2call"
# The company first: a Local channel whose far half rings the operators (/n: kept, not optimised
# away, so the first leg lasts the whole call).
COMPANY_RING = "Local/s@platform-click2call-company/n"
# The contract's dialplan reads C2C_DIAL_1 .. C2C_DIAL_n; an Originate carries at most 32 variables.
MAX_HOPS = 20
# A claim still unsent this long after it was made lost its task: the sweep queues it again.
CLAIM_LOST_AFTER = dt.timedelta(seconds=60)
# A countdown may fire a little before next_try_at on another host's clock.
DUE_SLACK = dt.timedelta(seconds=2)
# An unanswered leg's disposition, in the words of an OriginateResult's outcome.
_UNANSWERED_OUTCOME = {CallRecord.Disposition.BUSY: "busy", CallRecord.Disposition.NO_ANSWER: "no_answer"}


class CallbackRefused(Exception):
    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _failed_status(party: str) -> str:
    return AttemptStatus.FAILED_USER if party == FirstParty.VISITOR else AttemptStatus.FAILED_COMPANY


def _second_party(first_party: str) -> str:
    return FirstParty.COMPANY if first_party == FirstParty.VISITOR else FirstParty.VISITOR


def _operator_channels(campaign: Campaign) -> list[str]:
    """The active operators' channels. A number is checked again as it is dialed (a prefix
    blocked or a rate removed since it was saved still holds); one refused is left out, and
    when every one is, the attempt fails with the reasons (ValueError)."""
    links = CampaignOperator.objects.filter(campaign=campaign, operator__active=True).select_related(
        "operator"
    )
    channels, refused = [], []
    for link in links:
        operator = link.operator
        if operator.dial_string:  # set by staff in the admin
            channels.append(operator.dial_string)
            continue
        try:
            number = operator_number_check(campaign=campaign, number=operator.number)
        except NumberRefused as refusal:
            logger.warning("campaign %s: operator %s not rung: %s", campaign.pk, operator.pk, refusal.detail)
            refused.append(f"{operator.name}: {refusal.detail}")
            continue
        channels.append(dial_string(server=campaign.server, number=number, route=campaign.route))
    if refused and not channels:
        raise ValueError("no operator may be rung (" + "; ".join(refused) + ")")
    return channels


def _message(campaign: Campaign) -> str:
    """What Playback plays: the uploaded file by its path without the extension (Asterisk
    reads it from MEDIA_ROOT, shared with it), or else the sound name."""
    if campaign.message_file:
        return str(Path(campaign.message_file.path).with_suffix(""))
    return campaign.message_sound


def attempt_dial_plan(*, attempt: CallAttempt) -> dict:
    """The Originate of an attempt's first leg: whom it rings, for how long, and the variables of
    [platform-click2call] that say what the answered party hears and whom it is put through to.

    In order, each operator is one hop (C2C_DIAL_1, C2C_DIAL_2, ...) rung ring_timeout seconds;
    all together, one hop of every operator joined with &. When the company is the first party,
    the first leg is a Local channel into [platform-click2call-company], which rings the same
    hops (C2C_RING_n) and is answered by the operator who answers.
    Raises ValueError when the campaign has nobody to ring or too many operators, or when the
    visitor's number was blocked or lost its rate since the request was taken."""
    request = attempt.request
    campaign = request.campaign
    operators = _operator_channels(campaign)
    if not operators:
        raise ValueError("the campaign has no active operator")
    try:
        number_rate_check(campaign=campaign, number=request.number)
    except NumberRefused as refusal:
        raise ValueError(f"the visitor's number: {refusal.detail}") from None
    if campaign.ringing == Campaign.Ringing.TOGETHER:
        company = ["&".join(operators)]
    elif len(operators) > MAX_HOPS:
        raise ValueError(f"at most {MAX_HOPS} operators are rung one after the other")
    else:
        company = operators
    visitor = dial_string(server=campaign.server, number=request.number, route=campaign.route)
    variables = {
        "PLATFORM_CALL": attempt.app_ref,
        "C2C_ATTEMPT": str(attempt.pk),
        "C2C_MESSAGE": _message(campaign),
        "C2C_TIMEOUT": str(campaign.ring_timeout),
    }
    if attempt.first_party == FirstParty.VISITOR:
        first = {"number": request.number, "route": campaign.route, "caller_id": campaign.visitor_caller_id}
        variables["C2C_CALLERID"] = campaign.company_caller_id or request.number
        timeout, hops = campaign.ring_timeout, company
    else:
        first = {"channel": COMPANY_RING, "caller_id": campaign.company_caller_id or request.number}
        # Blank, the visitor's leg would show the first leg's caller ID: maybe their own number.
        variables["C2C_CALLERID"] = campaign.visitor_caller_id or campaign.server.outbound_caller_id
        variables |= {f"C2C_RING_{n}": hop for n, hop in enumerate(company, 1)}
        timeout, hops = campaign.ring_timeout * len(company), [visitor]
    variables |= {f"C2C_DIAL_{n}": hop for n, hop in enumerate(hops, 1)}
    return {**first, "timeout": timeout, "variables": variables}


def _attempt_create(*, request: CallRequest, kind: str, first_party: str, user=None) -> CallAttempt:
    seq = (request.attempts.aggregate(last=Max("seq"))["last"] or 0) + 1
    return CallAttempt.objects.create(
        request=request,
        seq=seq,
        kind=kind,
        first_party=first_party,
        channel_id=f"c2c-{request.pk}-{seq}",
        requested_by=user,
    )


def _request_out_of_tries(*, request: CallRequest, now: dt.datetime):
    """A waiting request with no try left fails as its last try did, and waits for a call back."""
    last = request.attempts.order_by("-seq").first()
    ended = last is not None and last.status in (AttemptStatus.FAILED_USER, AttemptStatus.FAILED_COMPANY)
    status = last.status if ended else _failed_status(request.campaign.first_party)
    CallRequest.objects.filter(pk=request.pk, status=Status.PENDING).update(
        status=status, next_try_at=None, finished_at=now, updated_at=now
    )


def attempt_claim_next(*, request_id: int, now: dt.datetime | None = None) -> CallAttempt | None:
    """The attempt to originate now: a new automatic try of a due PENDING request (the request
    turns DIALING by a conditional update, so of two tasks one claims), or the try claimed but
    never sent by a task that died (its redelivery sends it). None when there is nothing to dial."""
    now = now or timezone.now()
    with transaction.atomic():
        request = CallRequest.objects.select_related("campaign").filter(pk=request_id).first()
        if request is None:
            return None
        if request.status == Status.DIALING:
            return request.attempts.filter(status=AttemptStatus.CLAIMED).select_related("request").first()
        if request.status != Status.PENDING:
            return None
        if request.tries >= 1 + request.campaign.redial_count:  # the campaign's redial count was lowered
            _request_out_of_tries(request=request, now=now)
            return None
        if request.next_try_at and request.next_try_at > now + DUE_SLACK:
            return None
        claimed = CallRequest.objects.filter(
            pk=request_id, status=Status.PENDING, tries=request.tries
        ).update(status=Status.DIALING, tries=F("tries") + 1, next_try_at=None, updated_at=now)
        if claimed != 1:
            return None
        return _attempt_create(
            request=request, kind=CallAttempt.Kind.AUTO, first_party=request.campaign.first_party
        )


def attempt_originate(*, attempt_id: int) -> CallAttempt | None:
    """Send the claimed attempt's Originate through the facade. A redelivered task resends a claim
    never sent, and gets OriginateAlreadyClaimed for one that was: nobody is rung twice.
    AmiNotConnected propagates (the claim stays, for the task's retry or the sweep)."""
    attempt = (
        CallAttempt.objects.select_related("request__campaign__server", "request__company")
        .filter(pk=attempt_id, status=AttemptStatus.CLAIMED)
        .first()
    )
    if attempt is None:
        return None
    campaign = attempt.request.campaign
    try:
        plan = attempt_dial_plan(attempt=attempt)
        facade.originate(
            server=campaign.server,
            channel_id=attempt.channel_id,
            context=CONTEXT,
            company=attempt.request.company,
            app="click2call",
            app_ref=attempt.app_ref,
            **plan,
        )
    except OriginateAlreadyClaimed as sent:
        # Sent by the task that died: its events decide, unless its record ended already (the
        # reconcile gave up a claim that was never sent): then no event will come.
        record = sent.record
        if record is not None and record.state == CallRecord.State.ENDED:
            return attempt_first_leg_ended(
                attempt_id=attempt.pk, answered=record.answered_at is not None, disposition=record.disposition
            )
    except ValueError as exc:  # the campaign's setup (operators, dial route): nothing was claimed
        return attempt_finish(attempt_id=attempt.pk, status=AttemptStatus.FAILED_COMPANY, detail=str(exc))
    except AmiError as exc:  # Asterisk refused the Originate: its record ended FAILED
        failed = _failed_status(attempt.first_party)
        return attempt_finish(attempt_id=attempt.pk, status=failed, detail=str(exc))
    claimed = CallAttempt.objects.filter(pk=attempt.pk, status=AttemptStatus.CLAIMED)
    claimed.update(status=AttemptStatus.DIALING)
    attempt.refresh_from_db()
    return attempt


def attempt_dial_next(*, request_id: int) -> CallAttempt | None:
    """Claim the request's next automatic try (or the unsent one of a task that died) and
    originate its first party."""
    attempt = attempt_claim_next(request_id=request_id)
    return attempt_originate(attempt_id=attempt.pk) if attempt else None


def attempt_finish(*, attempt_id: int, status: str, detail: str = "") -> CallAttempt | None:
    """End an attempt (once: a conditional update from claimed or dialing) and its request: COMPLETED
    (its campaign's price_per_completed frozen on it as its price), or another automatic try after
    the campaign's pause while tries remain, or FAILED_* to wait for a call back.
    None when the attempt had ended already."""
    from click2call.tasks import dial_attempt  # the tasks import this module

    now = timezone.now()
    with transaction.atomic():
        ended = CallAttempt.objects.filter(
            pk=attempt_id, status__in=[AttemptStatus.CLAIMED, AttemptStatus.DIALING]
        ).update(status=status, detail=detail[:200], finished_at=now)
        if ended != 1:
            return None
        attempt = CallAttempt.objects.select_related("request__campaign").get(pk=attempt_id)
        request = CallRequest.objects.select_for_update().get(pk=attempt.request_id)
        campaign = attempt.request.campaign
        if request.status != Status.DIALING:
            return attempt
        retry = (
            status not in (AttemptStatus.COMPLETED, AttemptStatus.NOT_DIALED)
            and attempt.kind == CallAttempt.Kind.AUTO
            and request.tries < 1 + campaign.redial_count
        )
        if retry:
            request.status = Status.PENDING
            request.next_try_at = now + dt.timedelta(seconds=campaign.redial_pause)
            dial_attempt.apply_async_on_commit((request.pk,), countdown=campaign.redial_pause)
        elif status == AttemptStatus.NOT_DIALED:
            # Rang nobody, so no automatic try is spent; later tries would ring the visitor late,
            # so none follow: the company's side failed, and the portal can call back.
            if attempt.kind == CallAttempt.Kind.AUTO:
                request.tries -= 1
            request.status = Status.FAILED_COMPANY
            request.finished_at = now
        else:
            request.status = status
            request.finished_at = now
            if status == AttemptStatus.COMPLETED:
                # Frozen here: the price the company agreed to when the call was made, whatever
                # the campaign's price becomes later (invoices and the calls list read this one).
                request.price = campaign.price_per_completed
        request.save(update_fields=["status", "tries", "next_try_at", "finished_at", "price", "updated_at"])
    return attempt


def attempt_outcome(*, first_party: str, stage: str, dial_status: str) -> tuple[str, str]:
    """The attempt's status from what [platform-click2call] reported: put through is COMPLETED; the
    second party busy, unanswered or unreachable counts against it; a first party that hung up
    during the message or while the second one rang (CANCEL) counts against the first."""
    if dial_status == "ANSWER":
        return AttemptStatus.COMPLETED, "bridged"
    detail = f"{stage or 'message'}: {dial_status or 'hung up'}"
    if dial_status in ("", "CANCEL"):
        return _failed_status(first_party), detail
    return _failed_status(_second_party(first_party)), detail


def attempt_reported(*, attempt_id: int, stage: str, dial_status: str) -> CallAttempt | None:
    """The C2CEnd of an attempt's first leg."""
    attempt = CallAttempt.objects.filter(pk=attempt_id).only("first_party").first()
    if attempt is None:
        return None
    status, detail = attempt_outcome(first_party=attempt.first_party, stage=stage, dial_status=dial_status)
    return attempt_finish(attempt_id=attempt_id, status=status, detail=detail)


def attempt_unanswered(*, attempt_id: int, outcome: str) -> CallAttempt | None:
    """The first party never answered (busy, no answer, congestion, failed)."""
    attempt = CallAttempt.objects.filter(pk=attempt_id).only("first_party").first()
    if attempt is None:
        return None
    return attempt_finish(
        attempt_id=attempt_id, status=_failed_status(attempt.first_party), detail=f"first party: {outcome}"
    )


def attempt_first_leg_ended(*, attempt_id: int, answered: bool, disposition: str) -> CallAttempt | None:
    """The first leg ended. Its OriginateResult (unanswered) or C2CEnd (answered) ended the attempt
    already, unless it was lost (the AMI dropped, reconcile closed the leg, the PBX lost the
    report): the attempt cannot stay dialing; it counts against the first party."""
    if not answered:
        outcome = _UNANSWERED_OUTCOME.get(disposition, "failed")
        return attempt_unanswered(attempt_id=attempt_id, outcome=outcome)
    attempt = CallAttempt.objects.filter(pk=attempt_id).only("first_party").first()
    if attempt is None:
        return None
    return attempt_finish(
        attempt_id=attempt_id, status=_failed_status(attempt.first_party), detail="ended without a report"
    )


def attempt_give_up(*, attempt_id: int, reason: str) -> CallAttempt | None:
    """End a claimed attempt whose Originate was never sent, without ringing anyone (NOT_DIALED).
    Its ChannelId is claimed and given up in telephony, so a task still holding the attempt finds
    it taken and sends nothing. None when the Originate went out meanwhile: its events decide."""
    attempt = (
        CallAttempt.objects.select_related("request__campaign__server", "request__company")
        .filter(pk=attempt_id, status=AttemptStatus.CLAIMED)
        .first()
    )
    if attempt is None:
        return None
    server = attempt.request.campaign.server
    try:
        # The task may have died before its own claim: claim here, so none can follow.
        call_record_claim(
            server=server,
            uniqueid=attempt.channel_id,
            company=attempt.request.company,
            app="click2call",
            app_ref=attempt.app_ref,
        )
    except OriginateAlreadyClaimed:
        return None
    if call_record_give_up(server=server, uniqueid=attempt.channel_id, reason=reason) is None:
        return None
    return attempt_finish(attempt_id=attempt.pk, status=AttemptStatus.NOT_DIALED, detail=reason)


def claims_give_up(*, now: dt.datetime | None = None) -> list[CallAttempt]:
    """Give up every claim left unsent for C2C_CLAIM_GIVE_UP_SECONDS: the visitor expects a call
    within minutes of asking, not whenever the PBX comes back."""
    now = now or timezone.now()
    give_up_after = dt.timedelta(seconds=settings.C2C_CLAIM_GIVE_UP_SECONDS)
    stale = CallAttempt.objects.filter(status=AttemptStatus.CLAIMED, created_at__lte=now - give_up_after)
    reason = f"not sent to the PBX within {settings.C2C_CLAIM_GIVE_UP_SECONDS} s; nobody was rung"
    given_up = (attempt_give_up(attempt_id=pk, reason=reason) for pk in stale.values_list("pk", flat=True))
    return [attempt for attempt in given_up if attempt is not None]


def requests_due(*, now: dt.datetime | None = None) -> list[int]:
    """Requests whose task was lost: a PENDING try that is due (or a first one queued over a
    minute ago), or a DIALING one whose claim was never sent."""
    now = now or timezone.now()
    pending = CallRequest.objects.filter(status=Status.PENDING).filter(
        next_try_at__lte=now
    ) | CallRequest.objects.filter(
        status=Status.PENDING, next_try_at__isnull=True, created_at__lte=now - CLAIM_LOST_AFTER
    )
    unsent = CallRequest.objects.filter(
        status=Status.DIALING,
        attempts__status=AttemptStatus.CLAIMED,
        attempts__created_at__lte=now - CLAIM_LOST_AFTER,
    )
    return sorted(set(pending.values_list("pk", flat=True)) | set(unsent.values_list("pk", flat=True)))


def request_callback(*, request: CallRequest, user) -> CallAttempt:
    """A call back from the portal: the company is rung first, then the visitor, and the two are
    put through. Only a FAILED_* request is called back; one at a time."""
    from click2call.tasks import dial_callback  # the tasks import this module

    failed = (Status.FAILED_USER, Status.FAILED_COMPANY)
    try:
        with transaction.atomic():
            turned = CallRequest.objects.filter(pk=request.pk, status__in=failed).update(
                status=Status.DIALING, finished_at=None, updated_at=timezone.now()
            )
            if turned != 1:
                raise CallbackRefused("Only a failed request is called back, once at a time.")
            attempt = _attempt_create(
                request=request, kind=CallAttempt.Kind.CALLBACK, first_party=FirstParty.COMPANY, user=user
            )
            dial_callback.delay_on_commit(attempt.pk)
    except IntegrityError:  # the visitor asked again meanwhile: that request is in progress
        raise CallbackRefused("A newer request of this number is in progress.") from None
    request.refresh_from_db()
    return attempt
