"""The dispatcher's writes: a caller joins, an agent is offered, answers, is bridged, the caller
leaves. Each is one transaction with conditional updates, so two dispatchers (or a dispatcher and a
restart) never offer one agent twice nor bridge one caller twice: the database has the last word,
and its unique constraints on Offer back it.

Called from the pbx process through `ctx.db` (sync, in a worker thread)."""

import dataclasses
import datetime as dt
import uuid

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from queues.models import Agent, Member, Offer, Queue, Strategy, Tier
from queues.services.events import member_fields, queue_events_emit
from telephony.models import CallRecord
from telephony.services.calls import call_record_adopt
from telephony.services.originate import call_record_claim, call_record_give_up
from telephony.services.servers import ami_source

AVAILABLE = (Agent.Status.AVAILABLE, Agent.Status.AVAILABLE_ON_DEMAND)
WAITING = Member.WAITING_STATES


class JoinRefused(Exception):
    """The caller cannot join: no such queue on this server, or it is unloaded."""


@dataclasses.dataclass(frozen=True)
class Joined:
    member: Member
    queue: Queue
    resumed: bool


def _members_count(queue: Queue) -> tuple:
    count = Member.objects.filter(queue=queue, state__in=WAITING).count()
    return ("members-count", queue, None, {"CC-Count": str(count), "CC-Selection": "Single-Queue"})


def queue_by_name(*, server_id: int, full_name: str) -> Queue:
    name, _, slug = full_name.strip().partition("@")
    # Locked: a caller joins a queue that stays loaded and undeleted until the member is written
    # (queue_unload, queue_del decide on the same row).
    queue = (
        Queue.objects.select_for_update(of=("self",))
        .select_related("company")
        .filter(server_id=server_id, name=name, company__slug=slug, company__active=True)
        .first()
    )
    if queue is None:
        raise JoinRefused(f"no queue {full_name!r} on this PBX server")
    if not queue.loaded:
        raise JoinRefused(f"queue {full_name} is not loaded")
    return queue


@transaction.atomic
def member_join(
    *,
    server_id: int,
    queue_name: str,
    uniqueid: str,
    channel: str,
    cid_name: str = "",
    cid_number: str = "",
    base_score: int = 0,
    answered_at: dt.datetime | None = None,
    source_app: str = "",
    source_ref: str = "",
    talk_limit: int | None = None,
    talk_warning: int | None = None,
    limit_warning_file: str = "",
    limit_timeout_file: str = "",
) -> Joined:
    """A caller joins the queue: a new member, or, when the queue allows it, the member this caller
    abandoned less than discard-abandoned-after ago, in its old place. Its call record is tagged
    with the queue's company. A talk limit (queues.services.handoff) is kept on the member: the
    bridge with its agent is then one Asterisk ends by itself."""
    queue = queue_by_name(server_id=server_id, full_name=queue_name)
    now = timezone.now()
    fields = {
        "session_uuid": uniqueid[:150],
        "channel": channel[:150],
        "cid_name": cid_name[:80],
        "cid_number": cid_number[:40],
        "base_score": max(-86400 * 365, min(86400 * 365, base_score)),
        "source_app": source_app[:40],
        "source_ref": source_ref[:120],
        "talk_limit": talk_limit,
        "talk_warning": talk_warning if talk_limit and talk_warning and talk_warning < talk_limit else None,
        "limit_warning_file": limit_warning_file[:200] if talk_limit else "",
        "limit_timeout_file": limit_timeout_file[:200] if talk_limit else "",
    }
    member = None
    if queue.abandoned_resume_allowed and cid_number:
        member = (
            Member.objects.select_for_update()
            .filter(
                queue=queue,
                cid_number=cid_number[:40],
                state=Member.State.ABANDONED,
                cancel_reason=Member.CancelReason.BREAK_OUT,
                ended_at__gte=now - dt.timedelta(seconds=queue.discard_abandoned_after),
            )
            .order_by("-ended_at")
            .first()
        )
    if member is not None:
        Member.objects.filter(pk=member.pk).update(
            **fields,
            state=Member.State.WAITING,
            ended_at=None,
            cancel_reason="",
            hangup_cause="",
            resumed=True,
        )
        member.refresh_from_db()
    else:
        score_from = (
            answered_at if queue.time_base_score == Queue.TimeBaseScore.SYSTEM and answered_at else now
        )
        member = Member.objects.create(queue=queue, joined_at=now, score_from=min(score_from, now), **fields)
    record = (
        CallRecord.objects.filter(server_id=server_id, uniqueid=uniqueid).only("app", "company_id").first()
    )
    if record is None or not record.app:
        call_record_adopt(
            server_id=server_id,
            uniqueid=uniqueid,
            company_id=queue.company_id,
            app="queues",
            app_ref=str(member.uuid),
        )
    queue_events_emit(
        company=queue.company,
        events=[("member-queue-start", queue, None, member_fields(member)), _members_count(queue)],
        when=now,
    )
    return Joined(member, queue, member.resumed)


def _new_channel_id() -> str:
    return "cc-" + uuid.uuid4().hex[:24]


def offer_claim(*, member_id: int, agent_id: int) -> Offer | None:
    """Claim the agent (Waiting and logged in -> Receiving, or Reserved with reserve-agents) and the
    member (-> Trying) for one offer; None when either was taken meanwhile. The unique constraint
    on ringing offers backs the conditional update: should it fire, nothing was claimed."""
    try:
        return _offer_claim(member_id=member_id, agent_id=agent_id)
    except (IntegrityError, _Unclaimed):  # a ringing offer of this agent exists (its state set by hand)
        return None


class _Unclaimed(Exception):
    """The agent, its tier or the member was taken meanwhile: the claim's transaction rolls back."""


@transaction.atomic
def _offer_claim(*, member_id: int, agent_id: int) -> Offer | None:
    now = timezone.now()
    # Rows locked in one order: queue, agent, tier, member (member_join and queue_del lock the queue
    # first too; agent_del the agent before its tiers; offer_failed the agent, its tier, then the
    # member). The queue first, loaded: queue_unload (an update of this row) either committed before
    # and no offer is made, or waits until this one is made.
    queue_id = (
        Queue.objects.select_for_update(of=("self",), no_key=True)
        .filter(members__pk=member_id, loaded=True)
        .values_list("pk", flat=True)
        .first()
    )
    member = (
        Member.objects.select_related("queue__company", "queue__server")
        .filter(pk=member_id, state__in=WAITING)
        .first()
    )
    if queue_id is None or member is None:
        return None
    agent = (
        Agent.objects.select_for_update(of=("self",)).select_related("company").filter(pk=agent_id).first()
    )
    if agent is None:
        raise _Unclaimed
    # The agent is offered through its tier in the queue, locked: a tier removed meanwhile (tier_del,
    # which locks it too) is never offered, nor removed while this offer rings.
    if not Tier.objects.select_for_update().filter(queue_id=queue_id, agent_id=agent_id).exists():
        raise _Unclaimed
    state = Agent.State.RESERVED if agent.reserve_agents else Agent.State.RECEIVING
    claimed = Agent.objects.filter(pk=agent_id, state=Agent.State.WAITING, status__in=AVAILABLE).update(
        state=state, last_offered_call=now, changed_at=now
    )
    if claimed != 1:
        raise _Unclaimed
    # Still waiting (the caller may have left since it was read): claimed on its row, or nothing is.
    if Member.objects.filter(pk=member_id, state__in=WAITING).update(state=Member.State.TRYING) != 1:
        raise _Unclaimed
    offer = Offer.objects.create(
        queue_id=member.queue_id,
        member=member,
        agent_id=agent_id,
        channel_id=_new_channel_id(),
        offered_at=now,
    )
    if agent.type == Agent.Type.CALLBACK:
        # The agent's leg is claimed with the offer, in one transaction: the Originate that follows
        # finds its claim made (and no offer is ever without its call record). It is a leg of the
        # caller's call, which figures count once, whoever answered.
        caller_call = (
            CallRecord.objects.filter(source=ami_source(member.queue.server_id), uniqueid=member.session_uuid)
            .values_list("linkedid", flat=True)
            .first()
        )
        call_record_claim(
            server=member.queue.server,
            uniqueid=offer.channel_id,
            company=member.queue.company,
            app="queues",
            app_ref=offer.channel_id,
            caller=member.cid_number[:80],
            callee=agent.contact[:80],
            linkedid=caller_call or member.session_uuid,
        )
    Tier.objects.filter(queue_id=member.queue_id, agent_id=agent_id).update(state=Tier.State.OFFERING)
    if member.queue.strategy == Strategy.ROUND_ROBIN:  # it goes on after this agent, across restarts
        Queue.objects.filter(pk=member.queue_id).update(last_agent_id=agent_id)
    agent.state = state
    queue_events_emit(
        company=member.queue.company,
        events=[
            ("agent-state-change", None, agent, {"CC-Agent-State": state}),
            (
                "agent-offering",
                member.queue,
                agent,
                member_fields(member) | {"CC-Agent-UUID": offer.channel_id},
            ),
        ],
        when=now,
    )
    offer.member, offer.agent = member, agent
    return offer


@transaction.atomic
def offer_sent(*, offer_id: int):
    """The Originate went out: a Reserved agent (reserve-agents) is now Receiving."""
    offer = Offer.objects.select_related("agent__company").get(pk=offer_id)
    received = Agent.objects.filter(pk=offer.agent_id, state=Agent.State.RESERVED)
    if received.update(state=Agent.State.RECEIVING, changed_at=timezone.now()):
        queue_events_emit(
            company=offer.agent.company,
            events=[("agent-state-change", None, offer.agent, {"CC-Agent-State": Agent.State.RECEIVING})],
        )


def _agent_back(agent: Agent, now: dt.datetime, events: list, **changes):
    """The agent's state after an offer or a call: Idle for an On Demand agent after a call,
    else Waiting (offered again once its delays have passed)."""
    state = changes.pop("state", Agent.State.WAITING)
    # changed_at: the dispatchers of other servers sharing this agent see the change.
    Agent.objects.filter(pk=agent.pk).update(state=state, changed_at=now, **changes)
    if state != agent.state:
        events.append(("agent-state-change", None, agent, {"CC-Agent-State": state}))
    agent.state = state


def _member_back_to_waiting(member_id: int):
    """A member whose last ringing offer ended goes back to Waiting (if it still waits)."""
    if not Offer.objects.filter(member_id=member_id, result=Offer.Result.RINGING).exists():
        Member.objects.filter(pk=member_id, state=Member.State.TRYING).update(state=Member.State.WAITING)


def _max_no_answer(agent: Agent, now: dt.datetime, events: list) -> str:
    """At max-no-answer no-answers in a row, the agent goes On Break. Returns its status."""
    agent.refresh_from_db(fields=["no_answer_count", "status"])
    if agent.max_no_answer and agent.no_answer_count >= agent.max_no_answer and agent.status in AVAILABLE:
        agent.status = Agent.Status.ON_BREAK
        Agent.objects.filter(pk=agent.pk).update(status=agent.status, last_status_change=now, changed_at=now)
        events.append(("agent-status-change", None, agent, {"CC-Agent-Status": agent.status}))
    return agent.status


@dataclasses.dataclass(frozen=True)
class OfferEnded:
    offer: Offer
    agent_status: str
    agent_ready_time: dt.datetime | None
    tier_state: str


@transaction.atomic
def offer_failed(*, offer_id: int, result: str, cause: str = "") -> OfferEnded | None:
    """The agent did not take the call. Busy: offered again after busy-delay-time; rejected: after
    reject-delay-time; no answer (or any other failure): after no-answer-delay-time, its tier is
    No Answer, and at max-no-answer no-answers in a row the agent goes On Break. A cancelled offer
    (the caller left or another agent answered) costs the agent nothing."""
    offer = (
        Offer.objects.select_for_update(of=("self",))
        .select_related("agent__company", "member", "queue")
        .filter(pk=offer_id, result=Offer.Result.RINGING)
        .first()
    )
    if offer is None:
        return None
    now = timezone.now()
    if offer.agent is None:  # its agent was deleted meanwhile: the offer is over, the caller waits
        Offer.objects.filter(pk=offer.pk).update(result=Offer.Result.CANCELED, ended_at=now)
        _member_back_to_waiting(offer.member_id)
        return None
    agent = offer.agent
    Offer.objects.filter(pk=offer.pk).update(result=result, ended_at=now, hangup_cause=cause[:40])
    events: list = []
    changes: dict = {}
    tier_state = Tier.State.READY
    if result == Offer.Result.BUSY:
        changes["ready_time"] = now + dt.timedelta(seconds=agent.busy_delay_time)
    elif result == Offer.Result.REJECTED:
        changes["ready_time"] = now + dt.timedelta(seconds=agent.reject_delay_time)
    elif result != Offer.Result.CANCELED:
        changes["ready_time"] = now + dt.timedelta(seconds=agent.no_answer_delay_time)
        changes["no_answer_count"] = F("no_answer_count") + 1
        tier_state = Tier.State.NO_ANSWER
    _agent_back(agent, now, events, **changes)
    Tier.objects.filter(queue_id=offer.queue_id, agent_id=agent.pk).update(state=tier_state)
    status = _max_no_answer(agent, now, events) if "no_answer_count" in changes else agent.status
    if result != Offer.Result.CANCELED:
        events.append(
            (
                "bridge-agent-fail",
                offer.queue,
                agent,
                member_fields(offer.member)
                | {"CC-Agent-UUID": offer.channel_id, "CC-Hangup-Cause": cause or result},
            )
        )
    _member_back_to_waiting(offer.member_id)
    queue_events_emit(company=agent.company, events=events, when=now)
    return OfferEnded(offer, status, changes.get("ready_time"), tier_state)


@dataclasses.dataclass(frozen=True)
class Answered:
    offer: Offer
    member: Member
    cancel: list  # channel ids of the member's other ringing offers


@transaction.atomic
def offer_answered(*, offer_id: int) -> Answered | None:
    """The agent answered and is ready: the member is Answered by this offer, once (None when the
    member was served by another agent, or left, meanwhile: the agent is then let go)."""
    now = timezone.now()
    offer = (
        Offer.objects.select_for_update(of=("self",))
        .select_related("agent__company", "member", "queue__company")
        .filter(pk=offer_id, result=Offer.Result.RINGING, agent__isnull=False)
        .first()
    )
    if offer is None:
        return None
    member = offer.member
    took = Member.objects.filter(pk=member.pk, state__in=WAITING).update(
        state=Member.State.ANSWERED, agent_id=offer.agent_id, bridged_at=now
    )
    if took != 1:
        return None
    Offer.objects.filter(pk=offer.pk).update(result=Offer.Result.ANSWERED, answered_at=now)
    others = list(
        Offer.objects.filter(member=member, result=Offer.Result.RINGING)
        .exclude(pk=offer.pk)
        .values_list("channel_id", flat=True)
    )
    agent = offer.agent
    events: list = []
    _agent_back(agent, now, events, state=Agent.State.IN_A_QUEUE_CALL, last_bridge_start=now)
    Tier.objects.filter(queue_id=offer.queue_id, agent_id=agent.pk).update(state=Tier.State.ACTIVE_INBOUND)
    member.state, member.bridged_at, member.agent = Member.State.ANSWERED, now, agent
    events.append(
        (
            "bridge-agent-start",
            offer.queue,
            agent,
            member_fields(member)
            | {"CC-Agent-UUID": offer.channel_id, "CC-Agent-Answered-Time": str(int(now.timestamp()))},
        )
    )
    events.append(_members_count(offer.queue))
    queue_events_emit(company=offer.queue.company, events=events, when=now)
    offer.member = member
    return Answered(offer, member, others)


@transaction.atomic
def offer_unbridged(*, offer_id: int, caller_gone: bool, cause: str = "") -> bool:
    """The agent answered but the Bridge could not be made: one of the two hung up a moment before.
    Caller gone: it abandoned (BREAK_OUT). Agent gone: the caller waits again; the agent counts a
    no-answer. Nobody talked, so no call is counted."""
    offer = (
        Offer.objects.select_for_update(of=("self",))
        .select_related("agent__company", "member", "queue__company")
        .filter(pk=offer_id, result=Offer.Result.ANSWERED, ended_at__isnull=True, agent__isnull=False)
        .first()
    )
    if offer is None:
        return False
    now = timezone.now()
    result = Offer.Result.CANCELED if caller_gone else Offer.Result.NO_ANSWER
    Offer.objects.filter(pk=offer.pk).update(
        result=result, answered_at=None, ended_at=now, hangup_cause=cause[:40]
    )
    member = offer.member
    events: list = []
    if caller_gone:
        Member.objects.filter(pk=member.pk).update(
            state=Member.State.ABANDONED,
            agent=None,
            bridged_at=None,
            ended_at=now,
            cancel_reason=Member.CancelReason.BREAK_OUT,
            hangup_cause=cause[:40],
        )
        fields = member_fields(member) | {"CC-Cause": "Cancel", "CC-Cancel-Reason": "BREAK_OUT"}
        events.append(("member-queue-end", offer.queue, None, fields))
    else:
        Member.objects.filter(pk=member.pk).update(state=Member.State.WAITING, agent=None, bridged_at=None)
    agent = offer.agent
    changes: dict = {}
    tier_state = Tier.State.READY
    if not caller_gone:  # the agent's channel was gone: as a no-answer (a standby agent's is over)
        changes = {
            "no_answer_count": F("no_answer_count") + 1,
            "ready_time": now + dt.timedelta(seconds=agent.no_answer_delay_time),
            "standby_channel": "",
        }
        tier_state = Tier.State.NO_ANSWER
    _agent_back(agent, now, events, **changes)
    Tier.objects.filter(queue_id=offer.queue_id, agent_id=agent.pk).update(state=tier_state)
    if not caller_gone:
        _max_no_answer(agent, now, events)
    fail = member_fields(member) | {"CC-Agent-UUID": offer.channel_id, "CC-Hangup-Cause": cause}
    events.append(("bridge-agent-fail", offer.queue, agent, fail))
    events.append(_members_count(offer.queue))
    queue_events_emit(company=offer.queue.company, events=events, when=now)
    return True


@transaction.atomic
def bridge_ended(*, offer_id: int, cause: str = "") -> Offer | None:
    """The caller and the agent are no longer joined: the talk time counts for the agent, who is
    Idle (On Demand) or Waiting again after its wrap-up."""
    offer = (
        Offer.objects.select_for_update(of=("self",))
        .select_related("agent__company", "member", "queue__company")
        .filter(pk=offer_id, result=Offer.Result.ANSWERED, ended_at__isnull=True, agent__isnull=False)
        .first()
    )
    if offer is None:
        return None
    now = timezone.now()
    talk = max(0, int((now - offer.answered_at).total_seconds())) if offer.answered_at else 0
    Offer.objects.filter(pk=offer.pk).update(ended_at=now, talk_time=talk, hangup_cause=cause[:40])
    Member.objects.filter(pk=offer.member_id).update(ended_at=now, hangup_cause=cause[:40])
    agent = offer.agent
    events: list = []
    on_demand = agent.status == Agent.Status.AVAILABLE_ON_DEMAND
    _agent_back(
        agent,
        now,
        events,
        state=Agent.State.IDLE if on_demand else Agent.State.WAITING,
        last_bridge_end=now,
        calls_answered=F("calls_answered") + 1,
        talk_time=F("talk_time") + talk,
        no_answer_count=0,  # max-no-answer counts no-answers in a row
    )
    Tier.objects.filter(queue_id=offer.queue_id, agent_id=agent.pk).update(state=Tier.State.READY)
    fields = member_fields(offer.member) | {"CC-Agent-UUID": offer.channel_id}
    ended = {"CC-Bridge-Terminated-Time": str(int(now.timestamp())), "CC-Hangup-Cause": cause}
    events.append(("bridge-agent-end", offer.queue, agent, fields | ended))
    events.append(("member-queue-end", offer.queue, agent, fields | ended | {"CC-Cause": "Terminated"}))
    queue_events_emit(company=offer.queue.company, events=events, when=now)
    offer.talk_time, offer.ended_at = talk, now
    return offer


@transaction.atomic
def member_leave(*, member_id: int, reason: str, cause: str = "") -> list[str] | None:
    """The caller leaves the queue without an agent: hung up (BREAK_OUT), timed out, pressed an exit
    key. Returns the channel ids of its ringing offers, for the dispatcher to hang up (None when the
    member had left already or was answered)."""
    now = timezone.now()
    # Only the member row (not its queue and company, which offer claims lock first).
    member = (
        Member.objects.select_for_update(of=("self",))
        .select_related("queue__company")
        .filter(pk=member_id)
        .first()
    )
    if member is None or member.state not in WAITING:
        return None
    Member.objects.filter(pk=member.pk).update(
        state=Member.State.ABANDONED, ended_at=now, cancel_reason=reason, hangup_cause=cause[:40]
    )
    ringing = list(
        Offer.objects.filter(member_id=member.pk, result=Offer.Result.RINGING).values_list("id", "channel_id")
    )
    for offer_id, _ in ringing:
        offer_failed(offer_id=offer_id, result=Offer.Result.CANCELED, cause="member left")
    fields = member_fields(member) | {
        "CC-Cause": "Cancel",
        "CC-Cancel-Reason": reason,
        "CC-Hangup-Cause": cause,
        "CC-Member-Leaving-Time": str(int(now.timestamp())),
    }
    queue_events_emit(
        company=member.queue.company,
        events=[("member-queue-end", member.queue, None, fields), _members_count(member.queue)],
        when=now,
    )
    return [channel_id for _, channel_id in ringing]


@transaction.atomic
def member_callback_set(*, member_id: int, number: str) -> bool:
    """The caller asked to be called back: no channel waits any more, the place in the queue stays."""
    return bool(
        Member.objects.filter(pk=member_id, state__in=WAITING).update(callback_number=number[:40], channel="")
    )


@dataclasses.dataclass(frozen=True)
class ClaimRefused:
    member_waiting: bool
    agent: Agent | None
    agent_ringing: bool


def claim_refused(*, member_id: int, agent_id: int) -> ClaimRefused:
    """Why offer_claim said no, for the dispatcher to correct its board: the member is no longer
    waiting, the agent is gone, or it is not Waiting, or an offer of it still rings."""
    return ClaimRefused(
        member_waiting=Member.objects.filter(pk=member_id, state__in=WAITING).exists(),
        agent=Agent.objects.select_related("company").filter(pk=agent_id).first(),
        agent_ringing=Offer.objects.filter(agent_id=agent_id, result=Offer.Result.RINGING).exists(),
    )


def caller_leg(offer: Offer) -> str:
    """The uniqueid of the caller's channel in a bridge: its own call, or its call back leg."""
    return f"{offer.channel_id}-cb" if offer.member.callback_number else offer.member.session_uuid


@transaction.atomic
def board_rebuild(
    *, server_id: int, live_uniqueids: set[str], live_channels: frozenset | set = frozenset()
) -> list[str]:
    """After the pbx process (re)starts: nobody is left Receiving, Reserved or Trying. Ringing offers
    are cancelled (their agent legs, if still live, are returned to be hung up) and their agents are
    Waiting again; calls still bridged stay; bridges whose legs are gone end; waiting callers whose
    channel is gone have abandoned. The dispatcher then offers afresh."""
    ended: list[str] = []
    offers = Offer.objects.filter(queue__server_id=server_id)
    for offer in offers.filter(result=Offer.Result.RINGING).select_related("member", "queue__server"):
        if offer.channel_id in live_uniqueids:
            ended.append(offer.channel_id)
        offer_failed(offer_id=offer.pk, result=Offer.Result.CANCELED, cause="pbx process restarted")
        # Claimed with the offer and never sent (the process died in between): nobody was rung.
        call_record_give_up(
            server=offer.queue.server, uniqueid=offer.channel_id, reason="pbx process restarted"
        )
    for offer in offers.filter(result=Offer.Result.ANSWERED, ended_at__isnull=True).select_related("member"):
        if offer.channel_id not in live_uniqueids or caller_leg(offer) not in live_uniqueids:
            bridge_ended(offer_id=offer.pk, cause="ended while the pbx process was away")
    members = Member.objects.filter(queue__server_id=server_id, state__in=WAITING)
    for member in members:
        if member.callback_number:
            Member.objects.filter(pk=member.pk, state=Member.State.TRYING).update(state=Member.State.WAITING)
        elif member.session_uuid not in live_uniqueids:
            member_leave(member_id=member.pk, reason=Member.CancelReason.BREAK_OUT, cause="gone")
        else:
            Member.objects.filter(pk=member.pk, state=Member.State.TRYING).update(state=Member.State.WAITING)
    agents = Agent.objects.filter(tiers__queue__server_id=server_id).distinct()
    stuck = agents.filter(Q(state=Agent.State.RECEIVING) | Q(state=Agent.State.RESERVED)).exclude(
        offers__result=Offer.Result.RINGING
    )
    in_call = agents.filter(state=Agent.State.IN_A_QUEUE_CALL).exclude(
        offers__result=Offer.Result.ANSWERED, offers__ended_at__isnull=True
    )
    for agent in [*stuck, *in_call]:
        Agent.objects.filter(pk=agent.pk, state=agent.state).update(
            state=Agent.State.WAITING, changed_at=timezone.now()
        )
    # A uuid-standby agent whose waiting channel hung up while nobody listened waits no more.
    standby = Agent.objects.filter(pk__in=agents.values("pk"), type=Agent.Type.UUID_STANDBY)
    standby.exclude(standby_channel="").exclude(standby_channel__in=live_channels).update(
        standby_channel="", changed_at=timezone.now()
    )
    return ended
