"""An agent's status, set by a person (the agent, a supervisor, the API or the CLI). Its state (Waiting,
Receiving, In a queue call ...) is the dispatcher's, changed by the calls only (queues/services/calls.py):
a state set by hand would let a busy agent be offered a second caller, or be deleted mid-call. Each
change is an event."""

from django.db import transaction
from django.utils import timezone

from queues.models import Agent
from queues.services.events import queue_events_emit

AVAILABLE = (Agent.Status.AVAILABLE, Agent.Status.AVAILABLE_ON_DEMAND)


@transaction.atomic
def agent_status_set(*, agent_id: int, status: str) -> Agent:
    """Change the agent's status. Becoming Available (either kind) from another status starts the
    agent afresh, as mod_callcenter does: the calls and talk time the strategies count, and the
    no-answers counted towards max-no-answer, start again from zero."""
    if status not in Agent.Status.values:
        raise ValueError(f"unknown status {status!r}; one of: {', '.join(Agent.Status.values)}")
    agent = Agent.objects.select_for_update(of=("self",)).select_related("company").get(pk=agent_id)
    # Choosing Available (either kind) again is how an On Demand agent, Idle after a call, says
    # it is ready for the next one.
    ready_again = status in AVAILABLE and agent.state == Agent.State.IDLE
    if agent.status == status and not ready_again:
        return agent
    now = timezone.now()
    changes: dict = {"status": status, "last_status_change": now} if agent.status != status else {}
    if status in AVAILABLE and agent.status not in AVAILABLE:
        changes |= {"calls_answered": 0, "talk_time": 0, "no_answer_count": 0, "ready_time": None}
    if ready_again:
        changes["state"] = Agent.State.WAITING
    for name, value in changes.items():
        setattr(agent, name, value)
    agent.save(update_fields=[*changes, "changed_at"])
    events = (
        [("agent-status-change", None, agent, {"CC-Agent-Status": status})] if "status" in changes else []
    )
    if "state" in changes:
        events.append(("agent-state-change", None, agent, {"CC-Agent-State": agent.state}))
    queue_events_emit(company=agent.company, events=events, when=now)
    return agent
