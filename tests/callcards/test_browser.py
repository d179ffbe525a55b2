"""The call card pages in Debian's chromium at 1280 and 375 px: the cards list, a card's page (its
PIN shown on request) and the usage report with its chart; nothing clipped, no word broken."""

import datetime as dt

import pytest
from django.utils import timezone

from callcards.lifecycle import Status
from callcards.models import Card, CardBatch, LowBalanceAlert
from callcards.services.cards import card_status_set
from tests.callcards.factories import CardBatchFactory, CardCallFactory, CardFactory, callcard_admin
from tests.factories import CompanyFactory, UserFactory
from tests.portal_checks import assert_no_word_broken, assert_nothing_clipped
from tests.queues.factories import QueueFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PIN = "73920518"


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")


@pytest.fixture
def acme():
    company = CompanyFactory(name="Acme Advice", slug="acme", time_zone="Europe/Paris")
    callcard_admin(company, username="carla")
    queue = QueueFactory(company=company, name="advice")
    big = CardBatchFactory(company=company, run="R1", batch="B1", count=60, initial_minutes=30, queue=queue)
    cards = [
        CardFactory(
            company=company,
            batch=big,
            queue=queue,
            balance_minutes=30,
            did="18005550100",
            pack=1 + n // 25,
            status=Status.USED if n and n % 3 == 0 else Status.ACTIVE,
            name="Zoë Ångström-Lindqvist" if n == 0 else ("=1+1" if n == 1 else ""),
            pin=PIN if n == 0 else f"{50000000 + n}",
        )  # fmt: skip
        for n in range(60)
    ]
    small = CardBatchFactory(company=company, run="R1", batch="B2", count=10, initial_minutes=120)
    for _ in range(10):
        CardFactory(company=company, batch=small, balance_minutes=120, status=Status.SHIP)
    CardBatchFactory(
        company=company, run="R2", batch="XL", count=5000, generated=1200, job=CardBatch.Job.RUNNING
    )
    card = cards[0]
    card.email = "zoe.angstrom-lindqvist@example.com"
    card.comments = "Bought at the kiosk on the station square; asked for the French line."
    card.save()
    card_status_set(card=card, to=Status.HOLD, user="carla", note="holder disputes a call")
    card_status_set(card=card, to=Status.ACTIVE, user="carla", note="dispute settled")
    for n, seconds in enumerate([61, 305, 1250]):
        CardCallFactory(
            card=card, agent=f"100{n}", agent_dispo="SALE" if n else "", agent_talk_sec=seconds,
            call_time=timezone.now() - dt.timedelta(days=3 - n), phone_number="+33 6 12 34 56 78",
        )  # fmt: skip
    card.balance_minutes = 2
    card.save()
    LowBalanceAlert.objects.create(
        kind=LowBalanceAlert.Kind.HOLDER, company=company, card=card, to=card.email, balance_minutes=2
    )
    for other in cards[3:20]:
        CardCallFactory(card=other, agent_talk_sec=400)
        other.balance_minutes = 23
        other.status = Status.USED
        other.save()
    cards[40].status = Status.VOID
    cards[40].save()
    return company, card


@pytest.mark.parametrize("width", [1280, 375])
def test_cards_card_and_usage_fit_the_screen(live_server, browser, screenshot_dir, acme, width):
    company, card = acme
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    log_in(page, live_server, "carla")

    page.goto(f"{live_server.url}/portal/acme/callcards/")
    assert page.locator("table.cards tbody tr").count() == 50
    assert "Zoë Ångström-Lindqvist" in page.locator("table.cards").inner_text()
    assert PIN not in page.content()
    page.screenshot(path=screenshot_dir / f"callcards-cards-{width}.png", full_page=True)
    assert_nothing_clipped(page)
    assert_no_word_broken(page, "table.cards td")

    page.select_option("select[name=status]", "USED")
    page.get_by_role("button", name="Filter").click()
    used = Card.objects.filter(company=company, status=Status.USED).count()
    assert page.locator("table.cards tbody tr").count() == used == 30

    page.goto(f"{live_server.url}/portal/acme/callcards/cards/{card.pk}/")
    assert page.locator('[data-card="balance"]').inner_text() == "2 min"
    assert "holder disputes a call" in page.locator("table.card-events").inner_text()
    assert page.locator("table.card-calls tbody tr").count() == 3
    assert PIN not in page.content()
    page.get_by_role("button", name="Show PIN").click()
    assert page.locator('[data-card="pin"]').inner_text() == PIN
    page.screenshot(path=screenshot_dir / f"callcards-card-{width}.png", full_page=True)
    assert_nothing_clipped(page)
    assert_no_word_broken(page, "table.card-calls td, table.card-events td, table.card-alerts td")

    page.goto(f"{live_server.url}/portal/acme/callcards/usage/")
    assert page.locator(".usage-row").count() == 3
    assert page.locator("svg.bar rect[data-segment=used]").count() == 1
    page.screenshot(path=screenshot_dir / f"callcards-usage-{width}.png", full_page=True)
    assert_nothing_clipped(page)
    assert_no_word_broken(page, "table.usage td")

    page.goto(f"{live_server.url}/portal/acme/callcards/calls/")
    assert page.locator("table.card-calls tbody tr").count() == 20
    page.screenshot(path=screenshot_dir / f"callcards-calls-{width}.png", full_page=True)
    assert_nothing_clipped(page)
    assert_no_word_broken(page, "table.card-calls td")

    page.goto(f"{live_server.url}/portal/acme/callcards/settings/")
    page.screenshot(path=screenshot_dir / f"callcards-settings-{width}.png", full_page=True)
    assert_nothing_clipped(page)

    page.goto(f"{live_server.url}/portal/acme/callcards/batches/")
    assert "Generating: 1200 of 5000" in page.locator("table.batches").inner_text()
    # The worker makes more: the page follows without a reload.
    page.evaluate("window.notReloaded = true")
    CardBatch.objects.filter(batch="XL").update(generated=3100)
    page.wait_for_selector("text=Generating: 3100 of 5000", timeout=6000)
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=screenshot_dir / f"callcards-batches-{width}.png", full_page=True)
    assert_nothing_clipped(page)
    context.close()


def test_the_section_is_hidden_from_a_user_without_the_permission(live_server, page, acme):
    company, _ = acme
    UserFactory(company=company, username="sam")
    log_in(page, live_server, "sam")
    page.goto(f"{live_server.url}/portal/acme/")
    assert page.locator("nav.nav").get_by_text("Call cards").count() == 0
    response = page.goto(f"{live_server.url}/portal/acme/callcards/")
    assert response.status == 404
