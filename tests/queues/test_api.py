"""The queues API: the company's queues, agents, tiers, members and events, and an agent's own status."""

import datetime as dt

import pytest
from django.utils import timezone

from queues.models import Agent, Queue, QueueEvent, Tier
from tests.factories import UserFactory
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory, TierFactory
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

API = "/api/queues"


@pytest.fixture
def api(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def queue(company):
    return QueueFactory(company=company, name="support")


def test_every_object_of_another_company_is_a_404(client, company_user, queue):
    tier = TierFactory(queue=queue)
    member = MemberFactory(queue=queue)
    for url in [
        f"{API}/queues/{queue.pk}/",
        f"{API}/agents/{tier.agent.pk}/",
        f"{API}/tiers/{tier.pk}/",
        f"{API}/members/{member.pk}/",
    ]:
        assert_other_company_gets_404(client, url, owner=company_user)
    assert_other_company_gets_404(
        client, f"{API}/queues/{queue.pk}/unload/", owner=company_user, method="post"
    )
    assert_other_company_gets_404(
        client,
        f"{API}/agents/{tier.agent.pk}/status/",
        owner=company_user,
        method="post",
        data={"status": "On Break"},
    )


def test_lists_show_only_the_company_rows(api, queue, django_assert_num_queries):
    for _ in range(3):
        TierFactory(queue=queue)
        MemberFactory(queue=queue)
    TierFactory()
    MemberFactory()
    # The session, the user and its company, then the count and the page.
    for path, count in [("queues", 1), ("agents", 3), ("tiers", 3), ("members", 3)]:
        with django_assert_num_queries(5 if path != "members" else 4):
            body = api.get(f"{API}/{path}/").json()
        assert body["count"] == count, path


def test_queue_settings_update_and_load(api, queue):
    response = api.patch(
        f"{API}/queues/{queue.pk}/",
        {"strategy": "ring-all", "max_wait_time": 90},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["strategy"] == "ring-all"
    assert Queue.objects.get().max_wait_time == 90
    assert api.post(f"{API}/queues/{queue.pk}/unload/").json()["loaded"] is False
    assert Queue.objects.get().loaded is False
    assert api.post(f"{API}/queues/{queue.pk}/load/").json()["loaded"] is True


def test_queue_settings_that_contradict_are_a_409(api, queue):
    response = api.patch(
        f"{API}/queues/{queue.pk}/", {"exit_keys": "0", "callback_key": "0"}, content_type="application/json"
    )
    assert response.status_code == 409
    assert response.json() == {"code": "conflict", "detail": "The call back key cannot also be an exit key."}


def test_agent_crud(api, company, queue):
    response = api.post(
        f"{API}/agents/", {"name": "1000", "contact": "PJSIP/1000"}, content_type="application/json"
    )
    assert response.status_code == 201, response.json()
    agent = response.json()
    assert (agent["full_name"], agent["status"], agent["type"]) == (
        f"1000@{company.slug}",
        "Logged Out",
        "callback",
    )
    again = api.post(
        f"{API}/agents/", {"name": "1000", "contact": "5551000"}, content_type="application/json"
    )
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    url = f"{API}/agents/{agent['id']}/"
    assert api.patch(url, {"wrap_up_time": 30}, content_type="application/json").json()["wrap_up_time"] == 30
    assert api.delete(url).status_code == 204
    assert not Agent.objects.exists()


def test_an_agent_in_a_call_cannot_be_deleted(api, company):
    agent = AgentFactory(company=company, state="In a queue call")
    response = api.delete(f"{API}/agents/{agent.pk}/")
    assert response.status_code == 409 and response.json()["code"] == "agent_busy"
    assert Agent.objects.exists()


@pytest.mark.parametrize("state", ["Receiving", "Reserved", "In a queue call"])
def test_an_agent_in_a_call_keeps_its_state_its_reach_and_its_row(api, company, state):
    """The issue's walk: state to Waiting, contact and type changed, then deleted; each refused."""
    agent = AgentFactory(company=company, state=state, contact="5552001")
    url = f"{API}/agents/{agent.pk}/"
    assert api.post(f"{url}state/", {"state": "Waiting"}, content_type="application/json").status_code == 404
    for change in ({"contact": "5552099"}, {"type": "uuid-standby"}, {"route": "other"}):
        response = api.patch(url, change, content_type="application/json")
        assert response.status_code == 409 and response.json()["code"] == "agent_busy", change
    assert api.delete(url).json()["code"] == "agent_busy"
    assert api.delete(url).status_code == 409  # the same answer twice: nothing changed in between
    # What does not touch the call may change.
    assert api.patch(url, {"wrap_up_time": 30}, content_type="application/json").status_code == 200
    assert api.patch(url, {"contact": "5552001"}, content_type="application/json").status_code == 200
    agent.refresh_from_db()
    assert (agent.state, agent.contact, agent.type, agent.wrap_up_time) == (state, "5552001", "callback", 30)


def test_a_tier_state_is_never_the_dispatcher_s_by_hand(api, queue):
    tier = TierFactory(queue=queue)
    url = f"{API}/tiers/{tier.pk}/"
    for state in ("Offering", "Active Inbound"):
        assert api.patch(url, {"state": state}, content_type="application/json").status_code == 409
    assert api.patch(url, {"state": "Standby"}, content_type="application/json").json()["state"] == "Standby"
    Tier.objects.update(state="Active Inbound")
    response = api.patch(url, {"state": "Ready"}, content_type="application/json")
    assert response.status_code == 409 and response.json()["code"] == "tier_busy"
    assert Tier.objects.get().state == "Active Inbound"


def test_agent_linked_to_another_company_user_is_a_404(api, company):
    agent = AgentFactory(company=company)
    response = api.patch(
        f"{API}/agents/{agent.pk}/", {"user": UserFactory().pk}, content_type="application/json"
    )
    assert response.status_code == 404
    assert Agent.objects.get().user is None


def test_agent_status_is_set_and_its_state_is_read_only(api, company):
    agent = AgentFactory(company=company, status="Logged Out")
    response = api.post(
        f"{API}/agents/{agent.pk}/status/", {"status": "Available"}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["status"] == "Available"
    response = api.post(f"{API}/agents/{agent.pk}/state/", {"state": "Idle"}, content_type="application/json")
    assert response.status_code == 404
    response = api.patch(f"{API}/agents/{agent.pk}/", {"state": "Idle"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["state"] == "Waiting"
    assert Agent.objects.get().state == "Waiting"
    bad = api.post(f"{API}/agents/{agent.pk}/status/", {"status": "Asleep"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid" and "status" in bad.json()["fields"]
    assert QueueEvent.objects.filter(action="agent-status-change").count() == 1


def test_agents_filtered_by_queue_status_and_state(api, queue):
    wanted = TierFactory(queue=queue, agent__status="On Break").agent
    TierFactory(queue=queue, agent__status="Available")
    AgentFactory(company=queue.company, status="On Break")
    body = api.get(f"{API}/agents/", {"queue": queue.pk, "status": "On Break", "state": "Waiting"}).json()
    assert [row["id"] for row in body["results"]] == [wanted.pk]


def test_tier_crud(api, queue):
    agent = AgentFactory(company=queue.company)
    body = {"queue": queue.pk, "agent": agent.pk, "level": 2}
    response = api.post(f"{API}/tiers/", body, content_type="application/json")
    assert response.status_code == 201 and response.json()["level"] == 2
    assert api.post(f"{API}/tiers/", body, content_type="application/json").status_code == 409
    url = f"{API}/tiers/{response.json()['id']}/"
    assert api.patch(url, {"position": 5}, content_type="application/json").json()["position"] == 5
    Tier.objects.update(state="Active Inbound")
    assert api.delete(url).json()["code"] == "tier_busy"
    Tier.objects.update(state="Ready")
    assert api.delete(url).status_code == 204


def test_a_tier_with_another_company_agent_is_a_404(api, queue):
    body = {"queue": queue.pk, "agent": AgentFactory().pk}
    response = api.post(f"{API}/tiers/", body, content_type="application/json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert not Tier.objects.exists()


def test_members_waiting_in_score_order(api, queue):
    now = timezone.now()
    first = MemberFactory(queue=queue, joined_at=now - dt.timedelta(seconds=300))
    MemberFactory(queue=queue, joined_at=now - dt.timedelta(seconds=10))
    MemberFactory(queue=queue, state="Abandoned")
    rows = api.get(f"{API}/members/", {"queue": queue.pk}).json()["results"]
    assert [row["position"] for row in rows] == [1, 2] and rows[0]["id"] == first.pk
    assert 299 <= rows[0]["score"] <= 302
    detail = api.get(f"{API}/members/{first.pk}/").json()
    assert detail["position"] == 1 and detail["queue_name"] == f"support@{queue.company.slug}"


def test_events_filtered_by_action(api, company):
    # An On Demand agent Idle after its call says it is ready again by choosing Available.
    agent = AgentFactory(company=company, status="Available (On Demand)", state="Idle")
    api.post(f"{API}/agents/{agent.pk}/status/", {"status": "Available"}, content_type="application/json")
    rows = api.get(f"{API}/events/", {"action": "agent-state-change", "agent": agent.pk}).json()["results"]
    assert [row["fields"]["CC-Agent-State"] for row in rows] == ["Waiting"]


def test_me_reads_and_sets_the_user_own_status(api, company_user):
    assert api.get(f"{API}/me/").json()["code"] == "not_an_agent"
    agent = AgentFactory(company=company_user.company, user=company_user, status="Logged Out")
    assert api.get(f"{API}/me/").json()["id"] == agent.pk
    response = api.post(f"{API}/me/", {"status": "On Break"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "On Break"
    agent.refresh_from_db()
    assert agent.status == "On Break"


def test_the_api_needs_credentials(client):
    response = client.get(f"{API}/agents/")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
