"""The portal's queue pages: tenancy, who opens which agent, the status buttons, hostile query
strings, CSV exports and pinned query counts."""

import csv
import datetime as dt
import io

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from queues.models import Agent, Member, Offer, QueueEvent
from queues.services.agents import agent_status_set
from tests.factories import UserFactory
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory, TierFactory
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db


def url(name, company, **kwargs):
    return reverse(f"queues:{name}", kwargs={"company_slug": company.slug, **kwargs})


@pytest.fixture
def logged_in(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def queue(company):
    return QueueFactory(company=company, name="support")


@pytest.fixture
def agent(company, queue):
    agent = AgentFactory(company=company, name="1000", status=Agent.Status.LOGGED_OUT)
    TierFactory(queue=queue, agent=agent)
    return agent


# Tenancy


@pytest.mark.parametrize(
    "name", ["wallboard", "wallboard-data", "agents", "queue-report", "agent-report", "events"]
)
def test_each_page_is_the_companys_own(client, company_user, name):
    assert_other_company_gets_404(client, url(name, company_user.company), owner=company_user)


def test_another_companys_agent_is_a_404_to_read_and_to_change(logged_in, company, agent):
    stranger = AgentFactory(status=Agent.Status.LOGGED_OUT)
    assert logged_in.get(url("agent", company, pk=stranger.pk)).status_code == 404
    assert (
        logged_in.post(url("agent-status", company, pk=stranger.pk), {"status": "Available"}).status_code
        == 404
    )
    stranger.refresh_from_db()
    assert stranger.status == Agent.Status.LOGGED_OUT
    assert_other_company_gets_404(
        logged_in, url("agent", company, pk=agent.pk), owner=UserFactory(company=company)
    )


def test_another_companys_callers_and_agents_are_not_on_the_wallboard(logged_in, company, queue):
    other_queue = QueueFactory(name="support")
    MemberFactory(queue=other_queue, cid_number="5559999")
    TierFactory(queue=other_queue, agent=AgentFactory(company=other_queue.company, name="spy"))
    MemberFactory(queue=queue, cid_number="5551111")

    page = logged_in.get(url("wallboard", company)).content.decode()
    data = logged_in.get(url("wallboard-data", company)).json()

    assert "5551111" in page and "5559999" not in page and "spy" not in page
    assert [q["id"] for q in data["queues"]] == [queue.pk]
    assert [caller["number"] for caller in data["queues"][0]["waiting"]] == ["5551111"]


def test_another_companys_queue_or_agent_is_no_filter_of_the_events(logged_in, company, queue):
    other_queue = QueueFactory()
    other_agent = AgentFactory(company=other_queue.company)
    QueueEvent.objects.create(
        company=other_queue.company, queue=other_queue, action="members-count", created_at=timezone.now()
    )
    for query in ({"queue": other_queue.pk}, {"agent": other_agent.pk}):
        response = logged_in.get(url("events", company), query)
        assert response.status_code == 400
        assert "members-count" not in response.content.decode().split("<tbody>")[1]


# The agent page


def test_an_agent_sees_its_caller_ringing_and_todays_counters(client, company, queue, agent):
    user = UserFactory(company=company)
    agent.user = user
    agent.save()
    now = timezone.now()
    done = MemberFactory(queue=queue, state=Member.State.ANSWERED, joined_at=now - dt.timedelta(minutes=3))
    Offer.objects.create(
        queue=queue, member=done, agent=agent, channel_id="a", offered_at=now - dt.timedelta(minutes=3),
        answered_at=now - dt.timedelta(minutes=3), ended_at=now - dt.timedelta(minutes=1),
        result=Offer.Result.ANSWERED, talk_time=125,
    )  # fmt: skip
    caller = MemberFactory(
        queue=queue, cid_number="5550142", cid_name="Ada <b>", joined_at=now - dt.timedelta(seconds=65)
    )
    Offer.objects.create(queue=queue, member=caller, agent=agent, channel_id="b", offered_at=now)
    client.force_login(user)

    response = client.get(url("agents", company), follow=True)

    body = response.content.decode()
    assert response.redirect_chain[-1][0] == url("agent", company, pk=agent.pk)
    assert "Ringing: offered to you" in body
    assert "5550142" in body and "Ada &lt;b&gt;" in body and "support@" in body
    assert "1:05" in body or "1:06" in body  # waited
    assert 'data-figure="calls">1<' in body and 'data-figure="talk-time">2:05<' in body


def test_an_agent_opens_only_its_own_page_and_a_supervisor_any(client, company, agent):
    colleague = AgentFactory(company=company, user=UserFactory(company=company))
    client.force_login(colleague.user)
    assert client.get(url("agent", company, pk=agent.pk)).status_code == 403
    assert client.post(url("agent-status", company, pk=agent.pk), {"status": "Available"}).status_code == 403
    agent.refresh_from_db()
    assert agent.status == Agent.Status.LOGGED_OUT

    supervisor = UserFactory(company=company)
    client.force_login(supervisor)
    assert client.get(url("agents", company)).status_code == 200
    assert client.get(url("agent", company, pk=agent.pk)).status_code == 200


@pytest.mark.parametrize("status", Agent.Status.values)
def test_the_status_buttons_set_the_agents_status_and_emit_the_event(logged_in, company, agent, status):
    if status == Agent.Status.LOGGED_OUT:
        agent_status_set(agent_id=agent.pk, status=Agent.Status.AVAILABLE)
    response = logged_in.post(url("agent-status", company, pk=agent.pk), {"status": status})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.status == status
    event = QueueEvent.objects.filter(agent=agent, action="agent-status-change").first()
    assert event.fields["CC-Agent-Status"] == status


@pytest.mark.parametrize("status", ["Busy", "", "available", "<script>", "x" * 5000])
def test_an_unknown_status_changes_nothing(logged_in, company, agent, status):
    response = logged_in.post(url("agent-status", company, pk=agent.pk), {"status": status}, follow=True)
    assert response.status_code == 200
    assert "Choose one of the statuses offered." in response.content.decode()
    agent.refresh_from_db()
    assert agent.status == Agent.Status.LOGGED_OUT


def test_the_status_form_needs_its_csrf_token(company, company_user, agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(company_user)
    assert client.post(url("agent-status", company, pk=agent.pk), {"status": "Available"}).status_code == 403
    page = client.get(url("agent", company, pk=agent.pk))
    token = page.content.decode().split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = client.post(
        url("agent-status", company, pk=agent.pk), {"status": "Available", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.status == Agent.Status.AVAILABLE


def test_the_status_change_is_a_post(logged_in, company, agent):
    assert (
        logged_in.get(url("agent-status", company, pk=agent.pk), {"status": "Available"}).status_code == 405
    )
    agent.refresh_from_db()
    assert agent.status == Agent.Status.LOGGED_OUT


# Reports


def _csv(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_queue_report_csv_has_the_figures(logged_in, company, queue):
    now = timezone.now()
    MemberFactory(
        queue=queue, joined_at=now - dt.timedelta(minutes=2), state=Member.State.ANSWERED,
        bridged_at=now - dt.timedelta(minutes=2) + dt.timedelta(seconds=12),
    )  # fmt: skip
    MemberFactory(
        queue=queue, joined_at=now - dt.timedelta(minutes=2), state=Member.State.ABANDONED,
        ended_at=now - dt.timedelta(minutes=1),
    )  # fmt: skip

    rows = _csv(logged_in.get(url("queue-report", company), {"format": "csv"}))

    assert rows[0][:4] == ["queue", "offered", "answered", "abandoned"]
    assert rows[0][5:7] == ["answered within service level", "abandoned after service level"]
    assert rows[1] == ["support", "2", "1", "1", "20", "1", "1", "50.0", "36", "60"]


def test_report_csv_cells_are_formula_safe_and_keep_commas_and_line_breaks(logged_in, company):
    # Names are validated on input; rows written by other means are escaped all the same.
    QueueFactory(company=company, name='=HYPERLINK("http://x","y")')
    QueueFactory(company=company, name="a,b\r\nc")
    AgentFactory(company=company, name="@SUM(1+1)")
    AgentFactory(company=company, name="-2+3")

    queues = [row[0] for row in _csv(logged_in.get(url("queue-report", company), {"format": "csv"}))[1:]]
    agents = [row[0] for row in _csv(logged_in.get(url("agent-report", company), {"format": "csv"}))[1:]]

    assert sorted(queues) == sorted(['\'=HYPERLINK("http://x","y")', "a,b\r\nc"])
    assert sorted(agents) == sorted(["'-2+3", "'@SUM(1+1)"])


def test_agent_report_shows_each_agents_calls(logged_in, company, queue, agent):
    now = timezone.now()
    member = MemberFactory(queue=queue, state=Member.State.ANSWERED, joined_at=now)
    Offer.objects.create(
        queue=queue, member=member, agent=agent, channel_id="c", offered_at=now, answered_at=now,
        ended_at=now, result=Offer.Result.ANSWERED, talk_time=90,
    )  # fmt: skip

    rows = _csv(logged_in.get(url("agent-report", company), {"format": "csv"}))
    assert rows[1] == ["1000", "1", "1", "90", "0"]
    assert "1:30" in logged_in.get(url("agent-report", company)).content.decode()


HOSTILE_PERIODS = [
    {"start": "2026-13-45"},
    {"start": "yesterday"},
    {"end": "0001-01-01"},
    {"start": "9999-12-31"},
    {"start": "2026-03-10", "end": "2026-03-01"},
    {"start": "2020-01-01", "end": "2026-01-01"},
    {"start": "2026-03-10\x00"},
    {"start": "' OR 1=1 --"},
    {"start": "2026-03-10" * 500},
]


@pytest.mark.parametrize("name", ["queue-report", "agent-report"])
@pytest.mark.parametrize("query", HOSTILE_PERIODS)
def test_a_bad_period_is_a_form_error_never_a_500(logged_in, company, queue, name, query):
    for extra in ({}, {"format": "csv"}):
        response = logged_in.get(url(name, company), {**query, **extra})
        assert response.status_code == 400
        assert 'class="errors"' in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"queue": "abc"},
        {"queue": "99999999999999999999999"},
        {"agent": "-1"},
        {"action": "<script>alert(1)</script>"},
        {"start": "2026-02-30"},
        {"start": "2026-03-10", "end": "2026-03-01"},
    ],
)
def test_hostile_event_filters_are_a_form_error(logged_in, company, query):
    response = logged_in.get(url("events", company), query)
    assert response.status_code == 400
    assert "<script>alert" not in response.content.decode()


@pytest.mark.parametrize("page", ["x", "-1", "99999", "1e9", ""])
def test_any_event_page_number_answers(logged_in, company, page):
    assert logged_in.get(url("events", company), {"page": page}).status_code == 200


def test_events_are_filtered_by_queue_agent_action_and_day(logged_in, company, queue, agent):
    other_queue = QueueFactory(company=company, name="sales")
    now = timezone.now()
    QueueEvent.objects.create(company=company, queue=queue, action="members-count", created_at=now,
                              fields={"CC-Count": "3"})  # fmt: skip
    QueueEvent.objects.create(company=company, queue=other_queue, action="member-queue-start", created_at=now)
    QueueEvent.objects.create(company=company, agent=agent, action="agent-status-change", created_at=now,
                              fields={"CC-Agent-Status": "On Break"})  # fmt: skip
    QueueEvent.objects.create(
        company=company, queue=queue, action="member-queue-end", created_at=now - dt.timedelta(days=3)
    )

    def shown(**query):
        body = logged_in.get(url("events", company), query).content.decode().split("<tbody>")[1]
        return {action for action in QueueEvent.Action.values if f"<code>{action}</code>" in body}

    assert shown() == {"members-count", "member-queue-start", "agent-status-change", "member-queue-end"}
    assert shown(queue=queue.pk) == {"members-count", "member-queue-end"}
    assert shown(agent=agent.pk) == {"agent-status-change"}
    assert shown(action="member-queue-start") == {"member-queue-start"}
    today = timezone.localtime(now, company.tzinfo).date().isoformat()
    assert shown(start=today, end=today) == {"members-count", "member-queue-start", "agent-status-change"}
    page = logged_in.get(url("events", company)).content.decode()
    assert "Agent-Status: On Break" in page
    # Each event in words beside its name (the webhook's), and the filter offers the words.
    assert 'Agent&#x27;s status changed <span class="muted"><code>agent-status-change</code>' in page
    assert '<option value="member-queue-start">Caller joined the queue</option>' in page


# Pinned query counts: session, user and company first, then the page's own reads.


def test_wallboard_queries_are_pinned(logged_in, company, django_assert_num_queries):
    def fill():
        queue = QueueFactory(company=company)
        MemberFactory.create_batch(3, queue=queue)
        TierFactory.create_batch(2, queue=queue)

    fill()
    logged_in.get(url("wallboard", company))
    # session, user, company, its permissions (2), queues, waiting members, tiers with agents, today's figures
    with django_assert_num_queries(9):
        logged_in.get(url("wallboard", company))
    fill()
    fill()
    with django_assert_num_queries(9):
        response = logged_in.get(url("wallboard", company))
    assert response.content.decode().count('data-list="waiting"') == 3
    with django_assert_num_queries(7):
        data = logged_in.get(url("wallboard-data", company)).json()
    assert sum(q["waiting_count"] for q in data["queues"]) == 9


def test_report_and_event_queries_are_pinned(logged_in, company, django_assert_num_queries):
    for _ in range(3):
        queue = QueueFactory(company=company)
        agent = AgentFactory(company=company)
        member = MemberFactory(queue=queue)
        Offer.objects.create(queue=queue, member=member, agent=agent, channel_id=f"q{queue.pk}",
                             offered_at=timezone.now(), result=Offer.Result.NO_ANSWER)  # fmt: skip
        QueueEvent.objects.create(company=company, queue=queue, agent=agent, action="agent-offering",
                                  created_at=timezone.now())  # fmt: skip
    logged_in.get(url("queue-report", company))
    # session, user, company, its permissions (2), queues (or agents), their figures
    with django_assert_num_queries(7):
        logged_in.get(url("queue-report", company))
    with django_assert_num_queries(5):
        logged_in.get(url("agent-report", company), {"format": "csv"})
    # session, user, company, its permissions (2), the filter's queues and agents, count, page
    with django_assert_num_queries(9):
        response = logged_in.get(url("events", company))
    assert response.content.decode().count("<code>agent-offering</code>") == 3


def test_agent_page_queries_are_pinned(logged_in, company, queue, agent, django_assert_num_queries):
    now = timezone.now()
    for n in range(3):  # listed with their callers and queue in the one query
        Offer.objects.create(
            queue=queue, member=MemberFactory(queue=queue), agent=agent, channel_id=f"pin-{n}",
            offered_at=now, answered_at=now, ended_at=now, result=Offer.Result.ANSWERED,
            disposition="SALE" if n else "",
        )  # fmt: skip
    logged_in.get(url("agent", company, pk=agent.pk))
    # session, user, company, its permissions (2), the agent, is the user an agent, today's counters,
    # the current offer, the last answered calls, the dispositions suggested
    with django_assert_num_queries(11):
        logged_in.get(url("agent", company, pk=agent.pk))


# The home panel


def test_home_panel_links_to_the_queue_pages_and_counts_waiting_callers(logged_in, company, queue, agent):
    MemberFactory.create_batch(2, queue=queue)
    MemberFactory(queue=QueueFactory())  # another company's
    body = logged_in.get(reverse("portal:home", kwargs={"company_slug": company.slug})).content.decode()
    assert 'data-figure="queues-waiting">2<' in body
    for name in ("wallboard", "agents", "queue-report", "events"):
        assert url(name, company) in body


def test_home_panel_is_hidden_for_a_company_without_queues(logged_in, company):
    body = logged_in.get(reverse("portal:home", kwargs={"company_slug": company.slug})).content.decode()
    assert url("wallboard", company) + '">Wallboard' not in body


def test_home_panel_is_one_query_and_links_an_agent_to_its_page(
    client, company, queue, agent, django_assert_num_queries
):
    agent.user = UserFactory(company=company)
    agent.save()
    agent_status_set(agent_id=agent.pk, status=Agent.Status.AVAILABLE)
    MemberFactory.create_batch(3, queue=queue)
    client.force_login(agent.user)
    home = reverse("portal:home", kwargs={"company_slug": company.slug})
    # session, user, company, its permissions (2), active users, the call figures, the queues panel
    with django_assert_num_queries(8):
        body = client.get(home).content.decode()
    assert 'data-figure="queues-waiting">3<' in body and 'data-figure="queues-agents-available">1<' in body
    assert f'href="{url("agent", company, pk=agent.pk)}">My agent page' in body
