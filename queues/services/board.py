"""The dispatcher's copy of one server's queues, loaded from the database and kept up to date from
it: the reads behind queues/engine.py's Board. Each function is one query round, for `ctx.db`."""

import dataclasses
import datetime as dt

from django.db.models import Q
from django.utils import timezone

from accounts.models import Company
from queues.engine import AgentView, MemberView, QueueView
from queues.models import Agent, Member, Offer, Queue, Tier

# Rows committed a little after the previous look may carry an earlier changed_at: look back this far.
OVERLAP = dt.timedelta(seconds=2)


def _epoch(when: dt.datetime | None) -> float | None:
    return when.timestamp() if when else None


@dataclasses.dataclass
class QueueInfo:
    """What the dispatcher needs of a queue beyond the engine's view."""

    id: int
    full_name: str
    company: Company
    moh_sound: str
    record_template: str
    max_wait_time: int
    max_wait_time_with_no_agent: int
    max_wait_time_with_no_agent_time_reached: int
    offer_timeout: int
    exit_keys: str
    callback_key: str
    announce_position_every: int
    loaded: bool


@dataclasses.dataclass
class AgentInfo:
    id: int
    full_name: str
    company_id: int
    type: str
    contact: str
    route: str
    standby_channel: str


@dataclasses.dataclass
class MemberInfo:
    id: int
    queue_id: int
    uuid: str
    session_uuid: str
    channel: str
    cid_name: str
    cid_number: str
    callback_number: str
    joined_at: float
    exit_keys: str = ""
    callback_failures: int = 0
    # Since when this call waits: its deadlines count from here (a resumed caller keeps its place
    # and its joined_at, not the time it waited before hanging up).
    waiting_since: float = 0.0
    # cc_outbound_announce: what the agent hears before the caller is put through.
    outbound_announce: str = ""
    # A talk limit (queues.services.handoff): the bridge is Bridge() L() run by the agent's channel.
    talk_limit: int | None = None
    talk_warning: int | None = None
    limit_warning_file: str = ""
    limit_timeout_file: str = ""
    # The app that sent the caller (queues.services.handoff): its call, which a call back would end.
    source_app: str = ""


@dataclasses.dataclass
class OfferInfo:
    id: int
    channel_id: str
    member_id: int
    agent_id: int
    queue_id: int
    answered: bool = False
    agent_channel: str = ""
    canceled: bool = False
    # Once bridged: the caller's channel uniqueid (its waiting channel, or its call back leg).
    member_session: str = ""
    # The Hangup cause of the agent's leg when it ended unanswered before its OriginateResponse.
    end_cause: int | None = None
    # The OriginateResponse's result and text when it came first, without the cause that decides
    # between busy, rejected and failed: the Hangup that follows decides.
    pending_result: tuple[str, str] | None = None


def queue_info(queue: Queue) -> QueueInfo:
    return QueueInfo(
        id=queue.pk,
        full_name=queue.full_name,
        company=queue.company,
        moh_sound=queue.moh_sound,
        record_template=queue.record_template,
        max_wait_time=queue.max_wait_time,
        max_wait_time_with_no_agent=queue.max_wait_time_with_no_agent,
        max_wait_time_with_no_agent_time_reached=queue.max_wait_time_with_no_agent_time_reached,
        offer_timeout=queue.offer_timeout,
        exit_keys=queue.exit_keys,
        callback_key=queue.callback_key,
        announce_position_every=queue.announce_position_every,
        loaded=queue.loaded,
    )


def queue_view(queue: Queue) -> QueueView:
    return QueueView(
        id=queue.pk,
        strategy=queue.strategy,
        tier_rules_apply=queue.tier_rules_apply,
        tier_rule_wait_second=queue.tier_rule_wait_second,
        tier_rule_wait_multiply_level=queue.tier_rule_wait_multiply_level,
        tier_rule_no_agent_no_wait=queue.tier_rule_no_agent_no_wait,
        ring_progressively_delay=queue.ring_progressively_delay,
        loaded=queue.loaded,
        last_agent_id=queue.last_agent_id,
    )


def agent_view(agent: Agent) -> AgentView:
    return AgentView(
        id=agent.pk,
        name=agent.full_name,
        status=agent.status,
        state=agent.state,
        wrap_up_time=agent.wrap_up_time,
        calls_answered=agent.calls_answered,
        talk_time=agent.talk_time,
        last_bridge_end=_epoch(agent.last_bridge_end),
        last_offered_call=_epoch(agent.last_offered_call),
        ready_time=_epoch(agent.ready_time),
        reachable=bool(agent.standby_channel)
        if agent.type == Agent.Type.UUID_STANDBY
        else bool(agent.contact),
    )


def agent_info(agent: Agent) -> AgentInfo:
    return AgentInfo(
        id=agent.pk,
        full_name=agent.full_name,
        company_id=agent.company_id,
        type=agent.type,
        contact=agent.contact,
        route=agent.route,
        standby_channel=agent.standby_channel,
    )


def member_view(member: Member) -> MemberView:
    return MemberView(
        id=member.pk,
        joined_at=member.joined_at.timestamp(),
        score_from=member.score_from.timestamp(),
        base_score=member.base_score,
    )


def member_info(member: Member) -> MemberInfo:
    return MemberInfo(
        id=member.pk,
        queue_id=member.queue_id,
        uuid=str(member.uuid),
        session_uuid=member.session_uuid,
        channel=member.channel,
        cid_name=member.cid_name,
        cid_number=member.cid_number,
        callback_number=member.callback_number,
        joined_at=member.joined_at.timestamp(),
        waiting_since=member.joined_at.timestamp(),
        talk_limit=member.talk_limit,
        source_app=member.source_app,
        talk_warning=member.talk_warning,
        limit_warning_file=member.limit_warning_file,
        limit_timeout_file=member.limit_timeout_file,
    )


@dataclasses.dataclass
class Snapshot:
    """Rows read at `taken_at`: the whole server at start, or what changed since the last look."""

    taken_at: dt.datetime
    queues: list = dataclasses.field(default_factory=list)  # Queue
    agents: list = dataclasses.field(default_factory=list)  # Agent
    tiers: list = dataclasses.field(default_factory=list)  # Tier (of changed or new rows)
    tier_ids: set | None = None  # every tier of the server's queues, to notice deletions
    queue_ids: set | None = None
    members: list = dataclasses.field(default_factory=list)  # Member, waiting
    offers: list = dataclasses.field(default_factory=list)  # Offer, ringing or bridged


def board_load(*, server_id: int) -> Snapshot:
    """Everything the dispatcher of this server starts from."""
    now = timezone.now()
    queues = list(Queue.objects.filter(server_id=server_id).select_related("company"))
    tiers = list(Tier.objects.filter(queue__server_id=server_id).select_related("agent__company"))
    members = list(Member.objects.filter(queue__server_id=server_id, state__in=Member.WAITING_STATES))
    offers = list(
        Offer.objects.filter(queue__server_id=server_id)
        .filter(Q(result=Offer.Result.RINGING) | Q(result=Offer.Result.ANSWERED, ended_at__isnull=True))
        .select_related("member")
    )
    agents = {t.agent_id: t.agent for t in tiers}
    return Snapshot(
        taken_at=now,
        queues=queues,
        agents=list(agents.values()),
        tiers=tiers,
        tier_ids={t.pk for t in tiers},
        queue_ids={q.pk for q in queues},
        members=members,
        offers=offers,
    )


def board_changes(*, server_id: int, since: dt.datetime) -> Snapshot:
    """Queues, agents and tiers changed since `since` (by the portal, the API, the CLI, another
    server's dispatcher), and the ids of every queue and tier, so deletions show."""
    now = timezone.now()
    after = since - OVERLAP
    queues = list(Queue.objects.filter(server_id=server_id, changed_at__gt=after).select_related("company"))
    tier_rows = list(
        Tier.objects.filter(queue__server_id=server_id).values_list("id", "changed_at", "agent_id")
    )
    changed_tiers = [pk for pk, changed, _ in tier_rows if changed > after]
    tiers = (
        list(Tier.objects.filter(pk__in=changed_tiers).select_related("agent__company"))
        if changed_tiers
        else []
    )
    agent_ids = {agent_id for _, _, agent_id in tier_rows}
    agents = list(Agent.objects.filter(pk__in=agent_ids, changed_at__gt=after).select_related("company"))
    return Snapshot(
        taken_at=now,
        queues=queues,
        agents=agents,
        tiers=tiers,
        tier_ids={pk for pk, _, _ in tier_rows},
        queue_ids=set(Queue.objects.filter(server_id=server_id).values_list("id", flat=True)),
    )


def member_reload(*, member_id: int) -> Member | None:
    return Member.objects.filter(pk=member_id, state__in=Member.WAITING_STATES).first()


def agent_reload(*, agent_id: int) -> Agent | None:
    return Agent.objects.select_related("company").filter(pk=agent_id).first()


def standby_set(*, server_id: int, agent_name: str, channel: str) -> Agent | None:
    """A uuid-standby agent called in and waits on `channel` (empty: it left)."""
    name, _, slug = agent_name.partition("@")
    agent = (
        Agent.objects.select_related("company")
        .filter(
            name=name, company__slug=slug, type=Agent.Type.UUID_STANDBY, tiers__queue__server_id=server_id
        )
        .distinct()
        .first()
    )
    if agent is None:
        return None
    Agent.objects.filter(pk=agent.pk).update(standby_channel=channel[:120], changed_at=timezone.now())
    agent.standby_channel = channel[:120]
    return agent
