"""callcenter_config's writes: validated by the models, refused while a call holds the row, and
every one of them bumps changed_at (the dispatcher's sign that something changed)."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from queues import selectors
from queues.models import Agent, Member, Queue, QueueEvent, Tier
from queues.services import config
from tests.factories import CompanyFactory, UserFactory
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory, TierFactory

pytestmark = pytest.mark.django_db

LONG_AGO = timezone.now() - dt.timedelta(days=1)


def aged(model, obj):
    """The row as if last changed a day ago, so a write must show in changed_at."""
    model.objects.filter(pk=obj.pk).update(changed_at=LONG_AGO)
    obj.refresh_from_db()
    return obj


def test_agent_add_creates_a_logged_out_agent():
    company = CompanyFactory()
    agent = config.agent_add(company=company, name="1000", type="Callback", contact="5551000")
    assert (agent.type, agent.status, agent.full_name) == ("callback", "Logged Out", f"1000@{company.slug}")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"name": "bad name"}, "Letters, digits"),
        ({"name": "1000", "contact": ""}, "needs a contact"),
        ({"name": "1000", "contact": "PJSIP/1,PJSIP/2"}, "without commas"),
        ({"name": "1000", "type": "webrtc"}, "Unknown type"),
    ],
)
def test_agent_add_refuses_bad_input_with_a_reason(kwargs, words):
    with pytest.raises(ValidationError, match=words):
        config.agent_add(company=CompanyFactory(), **{"contact": "5551000", **kwargs})
    assert not Agent.objects.exists()


def test_agent_names_are_unique_per_company_only():
    agent = AgentFactory(name="1000")
    with pytest.raises(ValidationError, match="already exists"):
        config.agent_add(company=agent.company, name="1000", contact="5551000")
    assert config.agent_add(company=CompanyFactory(), name="1000", contact="5551000")


def test_an_agent_is_linked_to_a_user_of_its_own_company_only():
    agent = AgentFactory()
    with pytest.raises(ValidationError, match="another company"):
        config.agent_update(agent=agent, changes={"user": UserFactory()})
    user = UserFactory(company=agent.company)
    assert config.agent_update(agent=agent, changes={"user": user}).user == user


def test_agent_set_settings_from_text_bumps_changed_at():
    agent = aged(Agent, AgentFactory())
    config.agent_set(agent=agent, key="wrap-up-time", value="30")
    config.agent_set(agent=agent, key="reserve_agents", value="true")
    config.agent_set(agent=agent, key="ready_time", value="1900000000")
    agent.refresh_from_db()
    assert agent.wrap_up_time == 30 and agent.reserve_agents is True
    assert agent.ready_time == dt.datetime.fromtimestamp(1900000000, tz=dt.UTC)
    assert agent.changed_at > LONG_AGO


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("wrap_up_time", "-1", "whole number"),
        ("wrap_up_time", "100000", "less than or equal"),
        ("reserve_agents", "maybe", "true or false"),
        ("colour", "blue", "Unknown key"),
        ("status", "Gone fishing", "Unknown status"),
        ("contact", "not a number", "A number"),
    ],
)
def test_agent_set_refuses_bad_values(key, value, words):
    agent = AgentFactory()
    with pytest.raises(ValidationError, match=words):
        config.agent_set(agent=agent, key=key, value=value)


def test_agent_set_status_goes_through_the_agent_service():
    agent = aged(Agent, AgentFactory(status=Agent.Status.LOGGED_OUT, calls_answered=4))
    config.agent_set(agent=agent, key="status", value="available")
    agent.refresh_from_db()
    assert (agent.status, agent.state, agent.calls_answered) == ("Available", "Waiting", 0)
    assert agent.changed_at > LONG_AGO
    actions = list(QueueEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["agent-status-change"]


@pytest.mark.parametrize("state", Agent.State.values)
def test_no_person_sets_an_agent_state(state):
    agent = AgentFactory(state=Agent.State.IN_A_QUEUE_CALL)
    with pytest.raises(ValidationError, match="set the agent's status instead"):
        config.agent_set(agent=agent, key="state", value=state)
    assert Agent.objects.get().state == Agent.State.IN_A_QUEUE_CALL
    assert not QueueEvent.objects.exists()


@pytest.mark.parametrize("state", config.AGENT_BUSY_STATES)
@pytest.mark.parametrize("key, value", [("contact", "5552099"), ("type", "uuid-standby"), ("route", "other")])
def test_how_an_agent_is_reached_stays_while_it_is_in_a_call(state, key, value):
    agent = AgentFactory(state=state, contact="5552001")
    with pytest.raises(config.ConfigRefused, match=f"change its {key}"):
        config.agent_set(agent=agent, key=key, value=value)
    assert config.agent_set(agent=agent, key="wrap_up_time", value="30").wrap_up_time == 30
    agent.refresh_from_db()
    assert (agent.contact, agent.type, agent.route) == ("5552001", "callback", "default")


def test_an_idle_agent_may_change_how_it_is_reached():
    agent = AgentFactory(state=Agent.State.IDLE)
    assert config.agent_set(agent=agent, key="contact", value="PJSIP/1000").contact == "PJSIP/1000"


@pytest.mark.parametrize("state", config.AGENT_BUSY_STATES)
def test_agent_del_is_refused_while_in_a_call(state):
    agent = AgentFactory(state=state)
    with pytest.raises(config.ConfigRefused, match=state):
        config.agent_del(agent=agent)
    assert Agent.objects.filter(pk=agent.pk).exists()


def test_agent_del_removes_the_agent_and_its_tiers():
    tier = TierFactory()
    config.agent_del(agent=tier.agent)
    assert not Agent.objects.exists() and not Tier.objects.exists()


def test_tier_add_checks_company_and_duplicates():
    queue = QueueFactory()
    with pytest.raises(ValidationError, match="different companies"):
        config.tier_add(queue=queue, agent=AgentFactory())
    agent = AgentFactory(company=queue.company)
    tier = config.tier_add(queue=queue, agent=agent, level="2", position=3)
    assert (tier.level, tier.position, tier.state) == (2, 3, "Ready")
    with pytest.raises(ValidationError, match="already exists"):
        config.tier_add(queue=queue, agent=agent)
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        config.tier_add(queue=queue, agent=AgentFactory(company=queue.company), level=0)


def test_tier_set_bumps_changed_at_and_refuses_other_keys():
    tier = aged(Tier, TierFactory())
    config.tier_set(tier=tier, key="state", value="no answer")
    config.tier_set(tier=tier, key="level", value="4")
    tier.refresh_from_db()
    assert (tier.state, tier.level) == ("No Answer", 4) and tier.changed_at > LONG_AGO
    with pytest.raises(ValidationError, match="Unknown key"):
        config.tier_set(tier=tier, key="agent", value="x")


@pytest.mark.parametrize("state", config.TIER_BUSY_STATES)
def test_tier_del_is_refused_while_offering_or_in_a_call(state):
    tier = TierFactory(state=state)
    with pytest.raises(config.ConfigRefused, match=state):
        config.tier_del(tier=tier)
    with pytest.raises(config.ConfigRefused, match="once the call is over"):
        config.tier_set(tier=tier, key="state", value="Ready")
    Tier.objects.update(state="Ready")  # the call ended
    config.tier_del(tier=tier)
    assert not Tier.objects.exists()


@pytest.mark.parametrize("state", ["offering", "Active Inbound"])
def test_no_person_sets_a_tier_in_a_call(state):
    tier = TierFactory()
    with pytest.raises(ValidationError, match="the dispatcher's"):
        config.tier_set(tier=tier, key="state", value=state)
    assert Tier.objects.get().state == "Ready"


def test_queue_del_is_refused_while_callers_wait_and_done_when_none():
    queue = QueueFactory()
    member = MemberFactory(queue=queue)
    with pytest.raises(config.ConfigRefused, match="unload it first"):
        config.queue_del(queue=queue)
    Member.objects.filter(pk=member.pk).update(state="Abandoned")
    config.queue_del(queue=queue)
    assert not Queue.objects.exists()


def test_queue_load_unload_reload_bump_changed_at():
    queue = aged(Queue, QueueFactory())
    config.queue_unload(queue=queue)
    assert queue.loaded is False and queue.changed_at > LONG_AGO
    queue = aged(Queue, queue)
    config.queue_reload(queue=queue)
    queue.refresh_from_db()
    assert queue.loaded is False and queue.changed_at > LONG_AGO
    config.queue_load(queue=queue)
    assert Queue.objects.get().loaded is True


def test_queue_update_checks_the_whole_queue():
    queue = aged(Queue, QueueFactory(exit_keys="0"))
    with pytest.raises(ValidationError, match="cannot also be an exit key"):
        config.queue_update(queue=queue, changes={"callback_key": "0"})
    config.queue_update(queue=queue, changes={"strategy": "Ring-All", "max_wait_time": "90"})
    queue.refresh_from_db()
    assert (queue.strategy, queue.max_wait_time) == ("ring-all", 90) and queue.changed_at > LONG_AGO


def test_members_waiting_in_score_order():
    queue = QueueFactory()
    now = timezone.now()
    early = MemberFactory(queue=queue, joined_at=now - dt.timedelta(seconds=100))
    boosted = MemberFactory(queue=queue, joined_at=now - dt.timedelta(seconds=10), base_score=500)
    late = MemberFactory(queue=queue, joined_at=now - dt.timedelta(seconds=5))
    MemberFactory(queue=queue, state="Abandoned")
    rows = selectors.members_waiting(company=queue.company)
    assert rows == [boosted, early, late]
    assert [m.position for m in rows] == [1, 2, 3] and 509 <= rows[0].score <= 512


def test_agents_of_a_queue_by_status_and_state():
    tier = TierFactory(agent__status="On Break")
    TierFactory(queue=tier.queue)
    AgentFactory(company=tier.queue.company, status="On Break")
    assert list(selectors.agents(company=None, queue=tier.queue, status="On Break")) == [tier.agent]
    assert selectors.queue_count_agents(queue=tier.queue) == 2
