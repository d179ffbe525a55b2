"""mod_callcenter's events: stored, and pushed to the company's webhook like call events."""

import datetime as dt

from django.utils import timezone

from accounts.models import Company
from queues.models import Agent, Member, Queue, QueueEvent
from telephony.services.webhooks import webhook_deliveries_add


def _epoch(when: dt.datetime | None) -> str:
    return str(int(when.timestamp())) if when else ""


def member_fields(member: Member) -> dict:
    """The CC-Member-* fields of an event about a member."""
    return {
        "CC-Member-UUID": str(member.uuid),
        "CC-Member-Session-UUID": member.session_uuid,
        "CC-Member-CID-Name": member.cid_name,
        "CC-Member-CID-Number": member.cid_number,
        "CC-Member-Joined-Time": _epoch(member.joined_at),
    }


def agent_fields(agent: Agent) -> dict:
    return {"CC-Agent": agent.full_name, "CC-Agent-Type": agent.type}


def queue_events_emit(
    *,
    company: Company,
    events: list[tuple[str, Queue | None, Agent | None, dict]],
    when: dt.datetime | None = None,
):
    """Keep each (action, queue, agent, fields) event and queue its webhook delivery (sent after
    commit). Fields are mod_callcenter's CC-* headers; CC-Action and CC-Queue are added here."""
    when = when or timezone.now()
    rows = []
    for action, queue, agent, fields in events:
        body = {"Event-Subclass": "callcenter::info", "CC-Action": action}
        if queue is not None:
            body["CC-Queue"] = queue.full_name
        if agent is not None:
            body |= agent_fields(agent)
        body |= fields
        body["Event-Date-Timestamp"] = _epoch(when)
        rows.append(
            QueueEvent(
                company_id=company.pk, queue=queue, agent=agent, action=action, fields=body, created_at=when
            )
        )
    QueueEvent.objects.bulk_create(rows)
    webhook_deliveries_add(company=company, items=[(row.action, row.fields) for row in rows])
