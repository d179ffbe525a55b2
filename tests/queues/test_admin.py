"""The queues' admin screens: lists, read-only records, and actions through the services."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from queues.models import Agent, Queue, QueueEvent, Tier
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("model", ["queue", "agent", "tier", "member", "offer", "queueevent"])
def test_every_list_and_search_answers(admin_client, model):
    TierFactory()
    MemberFactory()
    url = reverse(f"admin:queues_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "100"}).status_code == 200


def test_members_are_read_only(admin_client):
    member = MemberFactory()
    assert admin_client.get(reverse("admin:queues_member_add")).status_code == 403
    response = admin_client.post(reverse("admin:queues_member_change", args=[member.pk]), {"cid_name": "x"})
    assert response.status_code == 403


def test_agent_actions_set_status_with_events(admin_client):
    agents = [AgentFactory(status="Available"), AgentFactory(status="Available")]
    url = reverse("admin:queues_agent_changelist")
    admin_client.post(url, {"action": "on_break", "_selected_action": [a.pk for a in agents]})
    assert set(Agent.objects.values_list("status", flat=True)) == {"On Break"}
    assert QueueEvent.objects.filter(action="agent-status-change").count() == 2
    admin_client.post(url, {"action": "log_out", "_selected_action": [agents[0].pk]})
    assert Agent.objects.get(pk=agents[0].pk).status == "Logged Out"


def test_queue_actions_unload_and_load(admin_client):
    queue = QueueFactory()
    url = reverse("admin:queues_queue_changelist")
    admin_client.post(url, {"action": "unload", "_selected_action": [queue.pk]})
    assert Queue.objects.get().loaded is False
    admin_client.post(url, {"action": "load", "_selected_action": [queue.pk]})
    assert Queue.objects.get().loaded is True


def test_a_tier_in_a_call_is_not_deleted(admin_client):
    tier = TierFactory(state="Active Inbound")
    admin_client.post(reverse("admin:queues_tier_delete", args=[tier.pk]), {"post": "yes"})
    assert Tier.objects.filter(pk=tier.pk).exists()


def test_an_agent_in_a_call_keeps_its_contact_in_the_admin(admin_client):
    agent = AgentFactory(state="In a queue call", contact="5552001")
    url = reverse("admin:queues_agent_change", args=[agent.pk])
    form = {
        "name": agent.name,
        "type": "callback",
        "contact": "5552099",
        "route": "default",
        "max_no_answer": 3,
        "wrap_up_time": 10,
        "reject_delay_time": 10,
        "busy_delay_time": 60,
        "no_answer_delay_time": 60,
    }
    response = admin_client.post(url, form, follow=True)
    assert "change its contact once the call is over" in response.content.decode()
    assert Agent.objects.get().contact == "5552001"
    assert not LogEntry.objects.exists()  # no "Changed contact" in the history either
    Agent.objects.update(state="Waiting")
    admin_client.post(url, form)
    assert Agent.objects.get().contact == "5552099"


def test_a_tier_state_set_in_the_admin_goes_through_the_service(admin_client):
    tier = TierFactory(state="Offering")
    url = reverse("admin:queues_tier_change", args=[tier.pk])
    response = admin_client.post(url, {"level": 1, "position": 1, "state": "Ready"}, follow=True)
    assert "once the call is over" in response.content.decode()
    assert Tier.objects.get().state == "Offering"
    response = admin_client.post(url, {"level": 1, "position": 1, "state": "Active Inbound"}, follow=True)
    assert Tier.objects.get().state == "Offering"


@pytest.mark.parametrize("state", ["Offering", "Active Inbound"])
def test_a_tier_added_in_the_admin_is_ready_whatever_state_is_posted(admin_client, state):
    queue = QueueFactory()
    agent = AgentFactory(company=queue.company)
    add = reverse("admin:queues_tier_add")
    assert 'name="state"' not in admin_client.get(add).content.decode()
    fields = {"queue": queue.pk, "agent": agent.pk, "level": 1, "position": 1, "state": state}
    admin_client.post(add, fields)
    assert Tier.objects.get().state == "Ready"  # the dispatcher's states are its own, on add too


def test_a_queue_page_lists_its_tiers_but_changes_them_only_on_their_own_page(admin_client):
    tier = TierFactory(state="Active Inbound")
    page = admin_client.get(reverse("admin:queues_queue_change", args=[tier.queue.pk])).content.decode()
    assert str(tier.agent) in page  # listed ...
    assert 'name="tiers-0-agent"' not in page and 'name="tiers-0-DELETE"' not in page  # ... not changed here
