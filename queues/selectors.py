"""The reads of the callcenter command and the API: queues, agents, tiers, members and events,
each scoped to a company (or to every company, for the command line), related rows joined."""

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Company
from queues.models import Agent, Member, Queue, QueueEvent, Tier


class NameNotFound(LookupError):
    pass


def split_full_name(full_name: str) -> tuple[str, str]:
    """`support@acme` -> ("support", "acme"): mod_callcenter's names, the company slug as domain."""
    name, at, slug = full_name.rpartition("@")
    if not at or not name or not slug:
        raise NameNotFound(f"{full_name!r} is not a name@company-slug such as support@acme")
    return name, slug


def company_by_slug(slug: str) -> Company:
    company = Company.objects.filter(slug=slug).first()
    if company is None:
        raise NameNotFound(f"no company with slug {slug!r}")
    return company


def queue_by_full_name(full_name: str) -> Queue:
    name, slug = split_full_name(full_name)
    queue = queues(company=None).filter(name=name, company__slug=slug).first()
    if queue is None:
        raise NameNotFound(f"no queue {full_name}")
    return queue


def agent_by_full_name(full_name: str) -> Agent:
    name, slug = split_full_name(full_name)
    agent = agents(company=None).filter(name=name, company__slug=slug).first()
    if agent is None:
        raise NameNotFound(f"no agent {full_name}")
    return agent


def queues(*, company: Company | None) -> QuerySet[Queue]:
    rows = Queue.objects.select_related("company", "server")
    return rows if company is None else rows.filter(company=company)


def agents(
    *, company: Company | None, queue: Queue | None = None, status: str = "", state: str = ""
) -> QuerySet[Agent]:
    """Agents (of a queue: those with a tier in it), by status and state when given."""
    rows = Agent.objects.select_related("company", "user")
    if company is not None:
        rows = rows.filter(company=company)
    if queue is not None:
        rows = rows.filter(tiers__queue=queue)
    if status:
        rows = rows.filter(status=status)
    if state:
        rows = rows.filter(state=state)
    return rows


def agent_for_user(*, user) -> Agent | None:
    """The agent a company user answers calls as, if any."""
    return Agent.objects.select_related("company", "user").filter(user=user, company=user.company_id).first()


def tiers(
    *, company: Company | None, queue: Queue | None = None, agent: Agent | None = None
) -> QuerySet[Tier]:
    rows = Tier.objects.select_related("queue__company", "agent__company")
    if company is not None:
        rows = rows.filter(queue__company=company)
    if queue is not None:
        rows = rows.filter(queue=queue)
    if agent is not None:
        rows = rows.filter(agent=agent)
    return rows


def members(*, company: Company | None, queue: Queue | None = None) -> QuerySet[Member]:
    """Every member, waiting or gone, newest first."""
    rows = Member.objects.select_related("queue__company", "agent__company").order_by("-joined_at", "-id")
    if company is not None:
        rows = rows.filter(queue__company=company)
    if queue is not None:
        rows = rows.filter(queue=queue)
    return rows


def member_score(member: Member, now: dt.datetime) -> int:
    """mod_callcenter's score: a point a second since the score counts from, plus the base score."""
    return int((now - member.score_from).total_seconds()) + member.base_score


def members_waiting(*, company: Company | None, queue: Queue | None = None) -> list[Member]:
    """The callers still waiting (Waiting or Trying), highest score first (the next served first),
    each with its `score` and its `position` in its queue."""
    now = timezone.now()
    rows = list(members(company=company, queue=queue).filter(state__in=Member.WAITING_STATES))
    for member in rows:
        member.score = member_score(member, now)
    rows.sort(key=lambda member: (-member.score, member.joined_at, member.pk))
    positions = {}
    for member in rows:
        positions[member.queue_id] = positions.get(member.queue_id, 0) + 1
        member.position = positions[member.queue_id]
    return rows


def events(
    *, company: Company, action: str = "", queue: Queue | None = None, agent: Agent | None = None
) -> QuerySet[QueueEvent]:
    rows = QueueEvent.objects.filter(company=company).select_related("queue__company", "agent__company")
    if action:
        rows = rows.filter(action=action)
    if queue is not None:
        rows = rows.filter(queue=queue)
    if agent is not None:
        rows = rows.filter(agent=agent)
    return rows


def queue_count_agents(*, queue: Queue, status: str = "") -> int:
    return agents(company=None, queue=queue, status=status).count()


def queue_count_members(*, queue: Queue) -> int:
    return Member.objects.filter(queue=queue, state__in=Member.WAITING_STATES).count()


def queue_count_tiers(*, queue: Queue) -> int:
    return Tier.objects.filter(queue=queue).count()
