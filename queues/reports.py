"""The queues' reads for the portal: the wallboard's snapshot, an agent's page, the reports over a
period and the event log. They read only the database, which the dispatcher writes as things happen.

Each read is a fixed number of queries whatever the number of queues, agents or callers (the tests
pin them). Days are the company's: a period of dates runs from the first day's midnight to the
midnight after the last day, in the company's time zone.

A member's wait runs from joining to being bridged (answered) or to leaving (abandoned); callers
still waiting count as offered but are in no wait figure until their wait ends.

The service level is the share of callers answered within the queue's N seconds among those whose
wait is decided: every caller answered, and the callers gone (hung up, timed out, left with a key)
after N seconds. A caller still waiting is no miss (not yet), nor one gone within N seconds (nobody
could have answered it in time).
"""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from import_export import fields as export_fields

from accounts.models import Company
from config.exports import ExportResource
from config.periods import day_bounds, today
from queues.models import Agent, Member, Offer, Queue, QueueEvent, Tier

ANSWERED = Member.State.ANSWERED
ABANDONED = Member.State.ABANDONED


def _seconds(duration: dt.timedelta | None) -> int | None:
    return None if duration is None else round(duration.total_seconds())


# Per queue


@dataclass
class QueueFigures:
    """A queue's callers over a period."""

    queue: Queue
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_in_service_level: int = 0
    abandoned_after_service_level: int = 0
    average_wait: int | None = None
    longest_wait: int | None = None

    @property
    def name(self) -> str:
        return self.queue.name

    @property
    def service_level_seconds(self) -> int:
        return self.queue.service_level_seconds

    @property
    def service_level(self) -> float | None:
        """Percent of the callers answered, or gone after the queue's N seconds, who were answered
        within them."""
        decided = self.answered + self.abandoned_after_service_level
        if not decided:
            return None
        return round(100 * self.answered_in_service_level / decided, 1)


def _queue_figures(queues: list[Queue], since: dt.datetime, until: dt.datetime) -> list[QueueFigures]:
    """One aggregate query for all `queues`."""
    if not queues:
        return []
    # Each queue has its own service level: a caller counts when bridged within that queue's N seconds,
    # and misses when bridged or gone after them.
    in_service_level, gone_after = Q(), Q()
    for queue in queues:
        limit = F("joined_at") + dt.timedelta(seconds=queue.service_level_seconds)
        in_service_level |= Q(queue_id=queue.pk, bridged_at__lte=limit)
        gone_after |= Q(queue_id=queue.pk, ended_at__gt=limit)
    wait = ExpressionWrapper(
        Coalesce("bridged_at", "ended_at") - F("joined_at"), output_field=DurationField()
    )
    ended = Q(state__in=[ANSWERED, ABANDONED])
    rows = (
        Member.objects.filter(queue__in=queues, joined_at__gte=since, joined_at__lt=until)
        .values("queue_id")
        .annotate(
            offered=Count("pk"),
            answered=Count("pk", filter=Q(state=ANSWERED)),
            abandoned=Count("pk", filter=Q(state=ABANDONED)),
            answered_in_service_level=Count("pk", filter=Q(state=ANSWERED) & in_service_level),
            abandoned_after_service_level=Count("pk", filter=Q(state=ABANDONED) & gone_after),
            wait_total=Sum(wait, filter=ended),
            waits=Count("pk", filter=ended),
            longest=Max(wait, filter=ended),
        )
        .order_by()
    )
    by_queue = {row["queue_id"]: row for row in rows}
    figures = []
    for queue in queues:
        row = by_queue.get(queue.pk)
        if row is None:
            figures.append(QueueFigures(queue))
            continue
        figures.append(
            QueueFigures(
                queue,
                offered=row["offered"],
                answered=row["answered"],
                abandoned=row["abandoned"],
                answered_in_service_level=row["answered_in_service_level"],
                abandoned_after_service_level=row["abandoned_after_service_level"],
                average_wait=round(row["wait_total"].total_seconds() / row["waits"])
                if row["waits"]
                else None,
                longest_wait=_seconds(row["longest"]),
            )
        )
    return figures


def queue_report(*, company: Company, start: dt.date, end: dt.date) -> list[QueueFigures]:
    """Every queue of the company, from `start` to `end` (dates, inclusive): two queries."""
    since, until = day_bounds(company, start, end)
    return _queue_figures(list(Queue.objects.filter(company=company)), since, until)


# Per agent


@dataclass
class AgentFigures:
    agent: Agent
    offers: int = 0
    calls: int = 0
    talk_time: int = 0
    no_answers: int = 0

    @property
    def name(self) -> str:
        return self.agent.name


def _offer_counts():
    return {
        "offers": Count("pk"),
        "calls": Count("pk", filter=Q(result=Offer.Result.ANSWERED)),
        "talk": Sum("talk_time"),
        "no_answers": Count("pk", filter=Q(result=Offer.Result.NO_ANSWER)),
    }


def agent_report(*, company: Company, start: dt.date, end: dt.date) -> list[AgentFigures]:
    """Every agent of the company and the offers made to it from `start` to `end`: two queries."""
    since, until = day_bounds(company, start, end)
    agents = list(Agent.objects.filter(company=company))
    rows = (
        Offer.objects.filter(agent__in=agents, offered_at__gte=since, offered_at__lt=until)
        .values("agent_id")
        .annotate(**_offer_counts())
        .order_by()
    )
    by_agent = {row["agent_id"]: row for row in rows}
    figures = []
    for agent in agents:
        row = by_agent.get(agent.pk, {})
        figures.append(
            AgentFigures(
                agent,
                offers=row.get("offers", 0),
                calls=row.get("calls", 0),
                talk_time=row.get("talk") or 0,
                no_answers=row.get("no_answers", 0),
            )
        )
    return figures


# An agent's page


@dataclass
class AgentToday:
    calls: int
    talk_time: int
    no_answers: int


@dataclass
class CurrentCall:
    """The caller an agent is being offered (ringing) or talks to (answered, not yet ended)."""

    offer: Offer
    ringing: bool
    waited: int


def agent_page(*, agent: Agent) -> tuple[AgentToday, CurrentCall | None]:
    """Today's counters (the company's day) from the agent's offers, and its current caller: two
    queries."""
    since, until = day_bounds(agent.company, today(agent.company), today(agent.company))
    counts = Offer.objects.filter(agent=agent, offered_at__gte=since, offered_at__lt=until).aggregate(
        **_offer_counts()
    )
    offer = (
        Offer.objects.filter(
            agent=agent, result__in=[Offer.Result.RINGING, Offer.Result.ANSWERED], ended_at__isnull=True
        )
        .select_related("member", "queue")
        .order_by("-offered_at", "-id")
        .first()
    )
    current = None
    if offer is not None:
        ringing = offer.result == Offer.Result.RINGING
        waited_until = timezone.now() if ringing else (offer.answered_at or timezone.now())
        current = CurrentCall(
            offer, ringing, max(0, round((waited_until - offer.member.joined_at).total_seconds()))
        )
    return AgentToday(counts["calls"], counts["talk"] or 0, counts["no_answers"]), current


AGENT_LAST_CALLS = 10


def agent_last_calls(*, agent: Agent, limit: int = AGENT_LAST_CALLS) -> list[Offer]:
    """The agent's last answered calls, newest first, for their dispositions: one query."""
    return list(
        Offer.objects.filter(agent=agent, result=Offer.Result.ANSWERED)
        .select_related("member", "queue")
        .order_by("-answered_at", "-id")[:limit]
    )


DISPOSITION_SUGGESTIONS = 20
DISPOSITION_SUGGESTION_DAYS = 30


def disposition_suggestions(*, company: Company) -> list[str]:
    """The dispositions the company's agents used most in the last 30 days, offered as they type so
    one outcome keeps one spelling in the reports: one query."""
    since = timezone.now() - dt.timedelta(days=DISPOSITION_SUGGESTION_DAYS)
    return list(
        Offer.objects.filter(queue__company=company, offered_at__gte=since)
        .exclude(disposition="")
        .values("disposition")
        .annotate(uses=Count("pk"))
        .order_by("-uses", "disposition")
        .values_list("disposition", flat=True)[:DISPOSITION_SUGGESTIONS]
    )


# The wallboard


@dataclass
class WaitingCaller:
    number: str
    name: str
    state: str
    waited: int
    callback: bool


@dataclass
class AgentLine:
    name: str
    status: str
    state: str
    tier_state: str
    level: int


@dataclass
class QueueBoard:
    queue: Queue
    waiting: list[WaitingCaller] = field(default_factory=list)
    agents: list[AgentLine] = field(default_factory=list)
    today: QueueFigures | None = None

    @property
    def longest_wait(self) -> int | None:
        return max((caller.waited for caller in self.waiting), default=None)

    def agents_by(self, attribute: str, values) -> list[tuple[str, int]]:
        return [
            (value, sum(1 for line in self.agents if getattr(line, attribute) == value)) for value in values
        ]

    @property
    def by_status(self) -> list[tuple[str, int]]:
        return self.agents_by("status", Agent.Status.values)

    @property
    def by_state(self) -> list[tuple[str, int]]:
        return self.agents_by("state", Agent.State.values)

    def as_json(self) -> dict:
        return {
            "id": self.queue.pk,
            "name": self.queue.name,
            "waiting_count": len(self.waiting),
            "longest_wait": self.longest_wait,
            "waiting": [caller.__dict__ for caller in self.waiting],
            "agents": [line.__dict__ for line in self.agents],
            "by_status": dict(self.by_status),
            "by_state": dict(self.by_state),
            "service_level_seconds": self.queue.service_level_seconds,
            "service_level": self.today.service_level,
            "offered_today": self.today.offered,
            "answered_today": self.today.answered,
            "abandoned_today": self.today.abandoned,
        }


def wallboard(*, company: Company) -> list[QueueBoard]:
    """Per queue: the callers waiting (longest first), its agents' status and state, and today's
    service level. Four queries."""
    now = timezone.now()
    queues = list(Queue.objects.filter(company=company))
    boards = {queue.pk: QueueBoard(queue) for queue in queues}
    waiting = Member.objects.filter(queue__in=queues, state__in=Member.WAITING_STATES).order_by(
        "joined_at", "id"
    )
    for member in waiting:
        boards[member.queue_id].waiting.append(
            WaitingCaller(
                number=member.cid_number,
                name=member.cid_name,
                state=member.state,
                waited=max(0, round((now - member.joined_at).total_seconds())),
                callback=bool(member.callback_number),
            )
        )
    for tier in (
        Tier.objects.filter(queue__in=queues).select_related("agent").order_by("level", "position", "id")
    ):
        boards[tier.queue_id].agents.append(
            AgentLine(tier.agent.name, tier.agent.status, tier.agent.state, tier.state, tier.level)
        )
    day = today(company)
    since, until = day_bounds(company, day, day)
    for figures in _queue_figures(queues, since, until):
        boards[figures.queue.pk].today = figures
    return list(boards.values())


# Events


def queue_events(
    *,
    company: Company,
    queue: Queue | None = None,
    agent: Agent | None = None,
    action: str = "",
    start: dt.date | None = None,
    end: dt.date | None = None,
):
    """The company's queue events, newest first, filtered."""
    events = QueueEvent.objects.filter(company=company).select_related("queue", "agent")
    if queue is not None:
        events = events.filter(queue=queue)
    if agent is not None:
        events = events.filter(agent=agent)
    if action:
        events = events.filter(action=action)
    if start is not None:
        events = events.filter(created_at__gte=day_bounds(company, start, start)[0])
    if end is not None:
        events = events.filter(created_at__lt=day_bounds(company, end, end)[1])
    return events


# CSV exports (through config.exports' formula escaping)


class QueueReportResource(ExportResource):
    queue = export_fields.Field(attribute="name", column_name="queue")
    offered = export_fields.Field(attribute="offered", column_name="offered")
    answered = export_fields.Field(attribute="answered", column_name="answered")
    abandoned = export_fields.Field(attribute="abandoned", column_name="abandoned")
    service_level_seconds = export_fields.Field(
        attribute="service_level_seconds", column_name="service level seconds"
    )
    answered_in_service_level = export_fields.Field(
        attribute="answered_in_service_level", column_name="answered within service level"
    )
    abandoned_after_service_level = export_fields.Field(
        attribute="abandoned_after_service_level", column_name="abandoned after service level"
    )
    service_level = export_fields.Field(attribute="service_level", column_name="service level %")
    average_wait = export_fields.Field(attribute="average_wait", column_name="average wait s")
    longest_wait = export_fields.Field(attribute="longest_wait", column_name="longest wait s")

    class Meta:
        model = Queue
        fields = [
            "queue",
            "offered",
            "answered",
            "abandoned",
            "service_level_seconds",
            "answered_in_service_level",
            "abandoned_after_service_level",
            "service_level",
            "average_wait",
            "longest_wait",
        ]
        export_order = fields


class AgentReportResource(ExportResource):
    agent = export_fields.Field(attribute="name", column_name="agent")
    offers = export_fields.Field(attribute="offers", column_name="offers")
    calls = export_fields.Field(attribute="calls", column_name="calls answered")
    talk_time = export_fields.Field(attribute="talk_time", column_name="talk time s")
    no_answers = export_fields.Field(attribute="no_answers", column_name="no answers")

    class Meta:
        model = Agent
        fields = ["agent", "offers", "calls", "talk_time", "no_answers"]
        export_order = fields


def _count(queryset, outer: str):
    """A count of `queryset` per `outer` row, as a subquery (0 when none)."""
    return Coalesce(Subquery(queryset.order_by().values(outer).annotate(n=Count("pk")).values("n")[:1]), 0)


def home_panel(*, company: Company, user) -> dict:
    """The portal home's queues panel: the company's queues, the callers waiting and the agents
    available now, and the user's own agent. One query (the home page is every user's first)."""
    figures = (
        Company.objects.filter(pk=company.pk)
        .values(
            queue_count=_count(Queue.objects.filter(company=OuterRef("pk")), "company"),
            waiting=_count(
                Member.objects.filter(queue__company=OuterRef("pk"), state__in=Member.WAITING_STATES),
                "queue__company",
            ),
            available=_count(
                Agent.objects.filter(
                    company=OuterRef("pk"),
                    status__in=[Agent.Status.AVAILABLE, Agent.Status.AVAILABLE_ON_DEMAND],
                ),
                "company",
            ),
            own_agent=Subquery(Agent.objects.filter(company=OuterRef("pk"), user=user).values("pk")[:1]),
        )
        .get()
    )
    return figures
