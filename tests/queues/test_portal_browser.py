"""The queue pages in Debian's chromium: the wallboard updates itself from the database without a
reload, and the agent's status buttons change its status."""

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from queues.models import Agent, Offer
from queues.services.agents import agent_status_set
from queues.services.events import queue_events_emit
from tests.factories import CompanyFactory, UserFactory
from tests.portal_checks import assert_nothing_clipped
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory, TierFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")


def test_a_caller_joining_appears_on_the_wallboard_without_a_reload(live_server, page, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="sue")
    queue = QueueFactory(company=company, name="support")
    TierFactory(queue=queue, agent=AgentFactory(company=company, name="1000"))
    TierFactory(queue=queue, agent=AgentFactory(company=company, name="1001", status=Agent.Status.ON_BREAK))
    MemberFactory(
        queue=queue,
        cid_number="5550100",
        cid_name="First",
        joined_at=timezone.now() - dt.timedelta(seconds=75),
    )
    log_in(page, live_server, "sue")
    page.goto(f"{live_server.url}/portal/acme/queues/")
    board = page.locator(f'[data-queue="{queue.pk}"]')
    assert board.locator('[data-field="waiting_count"]').inner_text() == "1"
    # A marker that a reload would wipe out.
    page.evaluate("window.notReloaded = true")

    MemberFactory(queue=queue, cid_number="5550199", cid_name="Mallory <img src=x onerror=alert(1)>")

    page.wait_for_function(
        "document.querySelector('[data-queue] [data-field=waiting_count]').textContent === '2'", timeout=2500
    )
    waiting = board.locator('[data-list="waiting"]')
    assert "5550199" in waiting.inner_text()
    assert "Mallory <img src=x onerror=alert(1)>" in waiting.inner_text()  # text, not markup
    assert waiting.locator("img").count() == 0
    assert page.evaluate("window.notReloaded") is True
    assert board.locator('[data-status="On Break"]').inner_text() == "1"
    minutes, seconds = board.locator('[data-field="longest_wait"]').inner_text().split(":")
    assert 76 <= int(minutes) * 60 + int(seconds) < 100
    page.screenshot(path=screenshot_dir / "queues-wallboard.png", full_page=True)

    # The first caller is answered: gone from the list on the next poll.
    queue.members.filter(cid_number="5550100").update(state="Answered", bridged_at=timezone.now())
    page.wait_for_function(
        "document.querySelector('[data-queue] [data-field=waiting_count]').textContent === '1'", timeout=2500
    )
    assert "5550100" not in waiting.inner_text()


def test_the_agents_status_buttons(live_server, page, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    user = UserFactory(company=company, username="ann")
    agent = AgentFactory(company=company, name="1000", user=user, status=Agent.Status.LOGGED_OUT)
    TierFactory(queue=QueueFactory(company=company, name="support"), agent=agent)
    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/portal/acme/queues/agents/")
    assert page.locator('[data-agent="status"]').inner_text() == "Logged out"

    for label, status in [
        ("Available on demand", Agent.Status.AVAILABLE_ON_DEMAND),
        ("On break", Agent.Status.ON_BREAK),
        ("Available", Agent.Status.AVAILABLE),
    ]:
        page.get_by_role("button", name=label, exact=True).click()
        assert page.locator('[data-agent="status"]').inner_text() == label
        agent.refresh_from_db()
        assert agent.status == status
    assert page.get_by_role("button", name="Available", exact=True).is_disabled()

    # The dispatcher offers it a caller: the page shows it without a reload.
    caller = MemberFactory(queue=agent.tiers.get().queue, cid_number="5550142", cid_name="Ada")
    Offer.objects.create(
        queue=caller.queue, member=caller, agent=agent, channel_id="o1", offered_at=timezone.now()
    )
    page.wait_for_selector("text=Ringing: offered to you", timeout=4000)
    assert "5550142" in page.locator('[data-live-section="caller"]').inner_text()
    page.screenshot(path=screenshot_dir / "queues-agent.png", full_page=True)

    page.get_by_role("button", name="Log out of the queues", exact=True).click()
    agent.refresh_from_db()
    assert agent.status == Agent.Status.LOGGED_OUT


def test_reports_and_events_fit_a_phone(live_server, browser, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="sue")
    queue = QueueFactory(company=company, name="support")
    agent = AgentFactory(company=company, name="1000")
    TierFactory(queue=queue, agent=agent)
    MemberFactory(queue=queue, state="Abandoned", ended_at=timezone.now(), cancel_reason="TIMEOUT")
    queue_events_emit(
        company=company,
        events=[("agent-status-change", None, agent, {"CC-Agent-Status": "On Break"}),
                ("members-count", queue, None, {"CC-Count": "1", "CC-Selection": "Single-Queue"})],
    )  # fmt: skip
    for width in (1280, 375):
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        log_in(page, live_server, "sue")
        for name, path in [("queue-report", "reports/queues/"), ("events", "events/")]:
            page.goto(f"{live_server.url}/portal/acme/queues/{path}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=screenshot_dir / f"queues-{name}-{width}.png", full_page=True)
        assert "Agent-Status: On Break" in page.locator("tbody").inner_text()
        context.close()


def test_the_wallboard_clock_is_the_portals_zone_in_24_hours(live_server, browser):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="sue")
    QueueFactory(company=company, name="support")
    # A browser in another zone and a 12-hour locale: the clock must not follow it.
    context = browser.new_context(timezone_id="America/New_York", locale="en-US")
    page = context.new_page()
    log_in(page, live_server, "sue")
    page.goto(f"{live_server.url}/portal/acme/queues/")
    clock = page.locator("[data-live-status]")
    assert re.fullmatch(r"live · \d\d:\d\d:\d\d CET", clock.inner_text())
    page.wait_for_function(  # a poll came back and wrote the clock again
        "before => document.querySelector('[data-live-status]').textContent !== before",
        arg=clock.inner_text(),
        timeout=5000,
    )
    shown = clock.inner_text()
    assert re.fullmatch(r"live · \d\d:\d\d:\d\d CET", shown), shown
    paris = timezone.localtime(timezone=ZoneInfo("Europe/Paris"))
    hour = int(shown.split(" · ")[1][:2])
    assert hour in (paris.hour, (paris.hour - 1) % 24)  # a poll may straddle the hour
    context.close()


def test_the_agent_page_says_since_when_and_fills_the_current_status(live_server, page):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    user = UserFactory(company=company, username="ann")
    agent = AgentFactory(company=company, name="1000", user=user, status=Agent.Status.LOGGED_OUT)
    TierFactory(queue=QueueFactory(company=company, name="support"), agent=agent)
    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/portal/acme/queues/agents/")
    assert page.locator('[data-agent="since"]').inner_text() == "no change since the agent was added"

    page.get_by_role("button", name="On break", exact=True).click()
    since = page.locator('[data-agent="since"]').inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CE[S]?T", since), since
    current = page.locator("button[aria-pressed=true]")
    assert current.inner_text() == "✓ On break"

    def background(button):
        return button.evaluate("b => getComputedStyle(b).backgroundColor")

    assert background(current) == "rgb(11, 92, 173)"  # the brand's fill: the one that holds
    others = page.locator("button[aria-pressed=false]")
    assert others.count() == 3
    assert {background(others.nth(n)) for n in range(3)} == {"rgb(255, 255, 255)"}
    page.screenshot(path="/tmp/ui-shots/queues-agent-current.png", full_page=True)


MOD_CALLCENTER_CASING = ["Logged Out", "On Break", "On Demand", "No Answer", "Active Inbound", "Trying"]


def test_queue_pages_say_statuses_in_one_casing_and_fit_at_1280_and_375(live_server, browser):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    UserFactory(company=company, username="sue")
    queue = QueueFactory(company=company, name="support")
    for name, status, state, tier_state in [
        ("1000", Agent.Status.ON_BREAK, Agent.State.WAITING, "Ready"),
        ("1001", Agent.Status.LOGGED_OUT, Agent.State.IDLE, "No Answer"),
        ("1002", Agent.Status.AVAILABLE_ON_DEMAND, Agent.State.RECEIVING, "Offering"),
    ]:
        agent = AgentFactory(company=company, name=name, status=status, state=state)
        TierFactory(queue=queue, agent=agent, state=tier_state)
    MemberFactory(queue=queue, cid_number="5550100", cid_name="Ada", state="Trying")
    shots = Path("/tmp/ui-shots")
    shots.mkdir(exist_ok=True)
    for width in (1280, 375):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        log_in(page, live_server, "sue")
        page.goto(f"{live_server.url}/portal/acme/queues/")
        board = page.locator(f'[data-queue="{queue.pk}"]')
        rendered = board.inner_text()
        assert [raw for raw in MOD_CALLCENTER_CASING if raw in rendered] == []
        # The script rewrites the lists from the JSON: the same words.
        page.evaluate("document.querySelector('[data-list=agents]').replaceChildren()")
        page.wait_for_function("document.querySelector('[data-list=agents]').children.length === 3")
        polled = board.inner_text()
        assert [raw for raw in MOD_CALLCENTER_CASING if raw in polled] == []
        assert "On break" in polled and "Logged out" in polled and "Available on demand" in polled
        assert "No answer (level 1)" in polled and "Ringing an agent" in polled
        page.screenshot(path=shots / f"queues-wallboard-words-{width}.png", full_page=True)
        assert_nothing_clipped(page)

        page.goto(f"{live_server.url}/portal/acme/queues/agents/")
        listed = page.locator("main").inner_text()
        assert [raw for raw in MOD_CALLCENTER_CASING if raw in listed] == []
        assert_nothing_clipped(page)
        context.close()


def test_the_agent_sets_a_disposition_after_the_call_and_the_list_fits_at_1280_and_375(live_server, browser):
    company = CompanyFactory(name="Acme Repairs", slug="acme", time_zone="Europe/Paris")
    user = UserFactory(company=company, username="ann")
    agent = AgentFactory(company=company, name="1000", user=user)
    queue = QueueFactory(company=company, name="after-sales-and-returns")
    now = timezone.now()
    offers = [
        Offer.objects.create(
            queue=queue,
            agent=agent,
            channel_id=f"done-{n}",
            offered_at=now,
            answered_at=now,
            ended_at=now,
            member=MemberFactory(queue=queue, cid_number=f"+3361234567{n}", cid_name="Ada Lovelace-Byron"),
            result=Offer.Result.ANSWERED,
            talk_time=3725,
        )  # fmt: skip
        for n in range(2)
    ]
    for width, disposition in ((1280, "SALE"), (375, "Rappel demain matin")):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        log_in(page, live_server, "ann")
        page.goto(f"{live_server.url}/portal/acme/queues/agents/{agent.pk}/")
        page.screenshot(path=Path("/tmp/ui-shots") / f"queues-agent-calls-{width}.png", full_page=True)
        assert_nothing_clipped(page)
        row = page.locator(f'[data-offer="{offers[0].pk}"]')
        row.locator('input[name="disposition"]').fill(disposition)
        row.get_by_role("button").click()
        page.wait_for_selector(".message.success")
        assert f"Disposition {disposition} recorded" in page.locator(".messages").inner_text()
        offers[0].refresh_from_db()
        assert offers[0].disposition == disposition
        page.screenshot(path=Path("/tmp/ui-shots") / f"queues-agent-dispositions-{width}.png", full_page=True)
        assert_nothing_clipped(page)
        context.close()

    # A refusal is shown in place (the form's address), and the page's live parts still follow the agent.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/portal/acme/queues/agents/{agent.pk}/")
    row = page.locator(f'[data-offer="{offers[1].pk}"]')
    row.locator('input[name="disposition"]').fill("=SUM(A1)")
    row.get_by_role("button").click()
    error = page.locator(f"#disposition-error-{offers[1].pk}")
    assert error.inner_text() == "A disposition starts with a letter or a digit."
    agent_status_set(agent_id=agent.pk, status=Agent.Status.ON_BREAK)
    page.wait_for_function("document.querySelector('[data-agent=status]').innerText === 'On break'")
    offers[1].refresh_from_db()
    assert offers[1].disposition == ""
    context.close()
