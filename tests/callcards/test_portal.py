"""The portal's call card pages: who opens them (the callcard_admin permission, the company), the
cards list and its filters, a card's page (history, calls, alerts, holder, PIN on request), the call
log in the company's days, the settings; hostile query strings and pinned query counts."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from callcards.lifecycle import Status
from callcards.models import CallcardSettings, Card, CardEvent, LowBalanceAlert
from callcards.services.cards import card_status_set
from callcards.services.holders import PIN_SHOWN
from tests.callcards.factories import CardBatchFactory, CardCallFactory, CardFactory, callcard_admin
from tests.factories import UserFactory
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

PIN = "73920518"


def url(name, company, **kwargs):
    return reverse(f"callcards:{name}", kwargs={"company_slug": company.slug, **kwargs})


@pytest.fixture
def admin(company):
    return callcard_admin(company, username="carla")


@pytest.fixture
def logged_in(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def card(company):
    batch = CardBatchFactory(company=company, run="R1", batch="B1", count=2, initial_minutes=30)
    return CardFactory(company=company, batch=batch, pin=PIN, balance_minutes=25, name="Ada")


LIST_PAGES = ["cards", "batches", "usage", "calls", "settings"]


# Who opens what


@pytest.mark.parametrize("name", LIST_PAGES)
def test_each_page_is_the_companys_own(client, admin, name):
    assert_other_company_gets_404(client, url(name, admin.company), owner=admin, outsider=callcard_admin())


def test_a_cards_pages_are_the_companys_own(client, admin, card):
    outsider = callcard_admin()
    assert_other_company_gets_404(
        client, url("card", card.company, pk=card.pk), owner=admin, outsider=outsider
    )
    for name in ("card-pin", "card-holder"):
        assert_other_company_gets_404(
            client, url(name, card.company, pk=card.pk), owner=admin, outsider=outsider, method="post",
        )  # fmt: skip


def test_another_companys_card_is_a_404_under_ones_own_slug(logged_in, company, card):
    stranger = CardFactory(pin="11112222", name="Eve")
    for name in ("card", "card-pin", "card-holder"):
        send = logged_in.get if name == "card" else logged_in.post
        response = send(url(name, company, pk=stranger.pk), {"name": "Mallory"})
        assert response.status_code == 404
        assert b"11112222" not in response.content
    stranger.refresh_from_db()
    assert stranger.name == "Eve"
    assert not CardEvent.objects.filter(card=stranger).exists()


@pytest.mark.parametrize("name", LIST_PAGES + ["card", "card-pin", "card-holder"])
def test_a_user_without_the_permission_gets_404_everywhere(client, company, card, name):
    client.force_login(UserFactory(company=company))
    kwargs = {"pk": card.pk} if name.startswith("card") and name != "cards" else {}
    assert client.get(url(name, company, **kwargs)).status_code in (404,)
    response = client.post(url(name, company, **kwargs), {"name": "Mallory", "low_balance_minutes": 1})
    assert response.status_code == 404
    assert PIN.encode() not in response.content
    card.refresh_from_db()
    assert card.name == "Ada"
    assert not CallcardSettings.objects.exists()
    assert not CardEvent.objects.filter(note=PIN_SHOWN).exists()


def test_an_anonymous_visitor_is_sent_to_log_in(client, company):
    response = client.get(url("cards", company))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_navigation_and_home_show_call_cards_only_to_its_admins(client, company, card):
    home = reverse("portal:home", kwargs={"company_slug": company.slug})
    client.force_login(UserFactory(company=company))
    body = client.get(home).content.decode()
    assert url("cards", company) not in body and "Call cards" not in body

    client.force_login(callcard_admin(company))
    body = client.get(home).content.decode()
    assert f'href="{url("cards", company)}"' in body
    assert 'data-figure="callcards-live">1<' in body


def test_the_home_panel_counts_the_cards_running_low(logged_in, company):
    CallcardSettings.objects.create(company=company, low_balance_minutes=5)
    CardFactory(company=company, balance_minutes=5)
    CardFactory(company=company, balance_minutes=6)
    CardFactory(company=company, balance_minutes=1, status=Status.VOID)  # dead: not "running low"
    body = logged_in.get(reverse("portal:home", kwargs={"company_slug": company.slug})).content.decode()
    assert 'data-figure="callcards-low">1<' in body and 'data-figure="callcards-live">2<' in body


# The cards list


def _ids(response):
    assert response.status_code == 200
    return [card.card_id for card in response.context["page"]]


def test_the_cards_list_filters_by_batch_status_and_card_id(logged_in, company, card):
    other_batch = CardBatchFactory(company=company, run="R2", batch="B9")
    held = CardFactory(company=company, batch=other_batch, status=Status.HOLD, held_from=Status.ACTIVE)
    everything = _ids(logged_in.get(url("cards", company)))
    assert set(everything) == {card.card_id, held.card_id}

    assert _ids(logged_in.get(url("cards", company), {"batch": other_batch.pk})) == [held.card_id]
    assert _ids(logged_in.get(url("cards", company), {"status": "HOLD"})) == [held.card_id]
    assert _ids(logged_in.get(url("cards", company), {"card_id": card.card_id[:11]})) == [card.card_id]
    spaced = " ".join(card.card_id[i : i + 4] for i in range(0, 12, 4))  # as printed on the card
    assert _ids(logged_in.get(url("cards", company), {"card_id": spaced})) == [card.card_id]


def test_the_cards_list_never_shows_a_pin(logged_in, company, card):
    body = logged_in.get(url("cards", company)).content.decode()
    assert card.card_id in body and "Ada" in body
    assert PIN not in body and card.pin_sealed not in body and card.pin_digest not in body


@pytest.mark.parametrize(
    "query",
    [
        {"card_id": "12ab"},
        {"card_id": "١٢٣"},  # Arabic-Indic digits are no card id digits
        {"card_id": "1\r\n2"},
        {"card_id": "9" * 41},
        {"status": "LOST"},
        {"status": "<script>"},
        {"batch": "abc"},
        {"batch": "99999999999999999999999"},
    ],
)
def test_a_hostile_cards_filter_is_a_400_that_says_why(logged_in, company, card, query):
    response = logged_in.get(url("cards", company), query)
    assert response.status_code == 400
    assert 'class="errors"' in response.content.decode()
    assert card.card_id not in response.content.decode().split("<tbody>")[1]


def test_another_companys_batch_is_no_filter(logged_in, company, card):
    stranger = CardFactory(pin="11112222")
    response = logged_in.get(url("cards", company), {"batch": stranger.batch_id})
    assert response.status_code == 400
    assert stranger.card_id not in response.content.decode()


@pytest.mark.parametrize("page", ["999999999", "99999999999999999999999", "-1", "abc", "", "١"])
def test_a_page_number_out_of_range_shows_a_page(logged_in, company, card, page):
    response = logged_in.get(url("cards", company), {"page": page})
    assert response.status_code == 200
    assert card.card_id in response.content.decode()


def test_the_cards_list_is_paginated(logged_in, company):
    batch = CardBatchFactory(company=company, count=60)
    CardFactory.create_batch(60, company=company, batch=batch)
    first = logged_in.get(url("cards", company))
    second = logged_in.get(url("cards", company), {"page": 2})
    assert len(first.context["page"]) == 50 and len(second.context["page"]) == 10
    assert 'rel="next"' in first.content.decode()


@pytest.mark.parametrize("name", ["cards", "calls", "batches", "usage"])
def test_list_pages_read_a_fixed_number_of_queries(
    logged_in, company, django_assert_num_queries, name
):  # fmt: skip
    def add_batch():
        batch = CardBatchFactory(company=company, count=3)
        for card in CardFactory.create_batch(3, company=company, batch=batch):
            CardCallFactory(card=card)

    add_batch()
    # session, user, company, permissions (the user's and its groups'), then the page's own reads.
    expected = {"cards": 8, "calls": 8, "batches": 9, "usage": 9}[name]
    with django_assert_num_queries(expected):
        assert logged_in.get(url(name, company)).status_code == 200
    for _ in range(4):
        add_batch()
    with django_assert_num_queries(expected):
        assert logged_in.get(url(name, company)).status_code == 200


# A card's page


def test_a_cards_page_shows_its_history_calls_and_alerts(logged_in, company, card):
    card.status = Status.SHIP
    card.save()
    card_status_set(card=card, to=Status.ACTIVE, user="bob", note="sold at the shop")
    CardCallFactory(card=card, agent="1001", agent_talk_sec=61, agent_dispo="SALE", phone_number="5557788")
    LowBalanceAlert.objects.create(
        kind=LowBalanceAlert.Kind.HOLDER, company=company, card=card, to="ada@example.com", balance_minutes=3
    )
    response = logged_in.get(url("card", company, pk=card.pk))
    body = response.content.decode()
    assert response.status_code == 200
    assert "bob" in body and "Shipped → Active" in body and "sold at the shop" in body
    assert "5557788" in body and "1001 · SALE" in body and "1:01" in body and "2 min" in body
    assert "ada@example.com" in body and "Waiting to be sent" in body
    assert 'data-card="balance">25 min<' in body
    assert PIN not in body and card.pin_sealed not in body
    assert "Show PIN" in body
    assert response["Cache-Control"].startswith("max-age=0")


def test_show_pin_shows_it_once_and_records_who_asked(logged_in, company, card, admin):
    response = logged_in.post(url("card-pin", company, pk=card.pk))
    assert response.status_code == 200
    assert f'data-card="pin">{PIN}<' in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    event = CardEvent.objects.get(card=card)
    assert (event.user, event.note, event.old_status, event.new_status) == (
        "carla",
        PIN_SHOWN,
        "ACTIVE",
        "ACTIVE",
    )
    card.refresh_from_db()
    assert card.status == Status.ACTIVE

    again = logged_in.get(url("card", company, pk=card.pk)).content.decode()
    assert PIN not in again and "PIN shown" in again and "carla" in again


def test_show_pin_is_a_post_with_its_csrf_token(company, admin, card):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert client.get(url("card-pin", company, pk=card.pk)).status_code == 405
    assert client.post(url("card-pin", company, pk=card.pk)).status_code == 403
    assert not CardEvent.objects.exists()


def test_the_holder_is_edited_on_the_cards_page(logged_in, company, card):
    data = {"name": "Zoë Ångström 李雷", "email": "zoe@example.com", "comments": "line one\r\nline two"}
    response = logged_in.post(url("card-holder", company, pk=card.pk), data)
    assert response.status_code == 302
    card.refresh_from_db()
    assert (card.name, card.email, card.comments) == (
        "Zoë Ångström 李雷",
        "zoe@example.com",
        "line one\r\nline two",
    )
    event = CardEvent.objects.get(card=card)
    assert (event.user, event.note) == ("carla", "holder changed: name, email, comments")
    # Sent again unchanged: nothing to record.
    logged_in.post(url("card-holder", company, pk=card.pk), data)
    assert CardEvent.objects.filter(card=card).count() == 1


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "Ada\r\nBcc: x", "email": "", "comments": ""}, "name"),
        ({"name": "\u202eevil", "email": "", "comments": ""}, "name"),
        ({"name": "x" * 61, "email": "", "comments": ""}, "name"),
        ({"name": "Ada", "email": "not an address", "comments": ""}, "email"),
        ({"name": "Ada", "email": "a@b.c\r\nBcc: all@x.example", "comments": ""}, "email"),
        ({"name": "Ada", "email": "", "comments": "ring\x07"}, "comments"),
        ({"name": "Ada", "email": "", "comments": "x" * 256}, "comments"),
    ],
)
def test_a_bad_holder_is_refused_with_a_form_error(logged_in, company, card, data, field):
    response = logged_in.post(url("card-holder", company, pk=card.pk), data)
    assert response.status_code == 400
    assert response.context["holder_form"].errors[field]
    card.refresh_from_db()
    assert (card.name, card.email, card.comments) == ("Ada", "", "")


def test_a_formula_name_is_stored_as_typed(logged_in, company, card):
    response = logged_in.post(
        url("card-holder", company, pk=card.pk), {"name": "=1+1", "email": "", "comments": ""}
    )
    assert response.status_code == 302
    card.refresh_from_db()
    assert card.name == "=1+1"


# The call log


def test_the_call_log_takes_the_companys_days(logged_in, company, card):
    paris = ZoneInfo("Europe/Paris")
    late = CardCallFactory(card=card, call_time=dt.datetime(2026, 11, 23, 23, 30, tzinfo=paris))
    early = CardCallFactory(card=card, call_time=dt.datetime(2026, 11, 24, 0, 30, tzinfo=paris))
    uniqueids = lambda response: [call.uniqueid for call in response.context["page"]]  # noqa: E731
    day = logged_in.get(url("calls", company), {"start": "2026-11-23", "end": "2026-11-23"})
    assert uniqueids(day) == [late.uniqueid]
    next_day = logged_in.get(url("calls", company), {"start": "2026-11-24"})
    assert uniqueids(next_day) == [early.uniqueid]
    assert "Europe/Paris" in day.content.decode()


def test_the_call_log_filters_by_card_agent_and_batch(logged_in, company, card):
    other = CardFactory(company=company, batch=CardBatchFactory(company=company))
    mine = CardCallFactory(card=card, agent="1000")
    theirs = CardCallFactory(card=other, agent="Zoë")
    uniqueids = lambda response: [call.uniqueid for call in response.context["page"]]  # noqa: E731
    assert uniqueids(logged_in.get(url("calls", company), {"card_id": card.card_id})) == [mine.uniqueid]
    assert uniqueids(logged_in.get(url("calls", company), {"agent": "zoë"})) == [theirs.uniqueid]
    assert uniqueids(logged_in.get(url("calls", company), {"batch": other.batch_id})) == [theirs.uniqueid]


def test_another_companys_calls_are_not_in_the_log(logged_in, company, card):
    mine = CardCallFactory(card=card)
    CardCallFactory(phone_number="5559999")
    response = logged_in.get(url("calls", company))
    assert [call.uniqueid for call in response.context["page"]] == [mine.uniqueid]
    assert "5559999" not in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"start": "0001-01-01"},
        {"start": "9999-12-31"},
        {"end": "2026-13-01"},
        {"start": "2026-11-23T10:00:00+14:00"},
        {"start": "١٧٩٥"},
        {"start": "2026-11-24", "end": "2026-11-23"},
        {"start": "2024-01-01", "end": "2026-01-01"},
        {"agent": "10\r\n00"},
        {"agent": "x\x00y"},
        {"agent": "x" * 131},
        {"card_id": "=1+1"},
    ],
)
def test_a_hostile_call_log_filter_is_a_400_that_says_why(logged_in, company, card, query):
    CardCallFactory(card=card)
    response = logged_in.get(url("calls", company), query)
    assert response.status_code == 400
    assert 'class="errors"' in response.content.decode()


# Settings


def test_the_settings_are_saved(logged_in, company):
    page = logged_in.get(url("settings", company))
    assert page.status_code == 200 and 'value="5"' in page.content.decode()  # the default
    response = logged_in.post(
        url("settings", company), {"low_balance_minutes": "3", "alert_email": "cards@acme.example"}
    )
    assert response.status_code == 302
    saved = CallcardSettings.objects.get(company=company)
    assert (saved.low_balance_minutes, saved.alert_email) == (3, "cards@acme.example")
    logged_in.post(url("settings", company), {"low_balance_minutes": "0", "alert_email": ""})
    saved.refresh_from_db()
    assert (saved.low_balance_minutes, saved.alert_email) == (0, "")
    assert CallcardSettings.objects.count() == 1


@pytest.mark.parametrize(
    "data",
    [
        {"low_balance_minutes": "-1", "alert_email": ""},
        {"low_balance_minutes": "99999999999999999999", "alert_email": ""},
        {"low_balance_minutes": "1.5", "alert_email": ""},
        {"low_balance_minutes": "", "alert_email": ""},
        {"low_balance_minutes": "5", "alert_email": "x@y.z\r\nBcc: a@b.c"},
        {"low_balance_minutes": "5", "alert_email": "nobody"},
    ],
)
def test_bad_settings_are_refused_with_a_form_error(logged_in, company, data):
    response = logged_in.post(url("settings", company), data)
    assert response.status_code == 400
    assert response.context["form"].errors
    assert not CallcardSettings.objects.exists()


def test_a_card_made_earlier_than_its_events_keeps_its_order(logged_in, company, card):
    # Events newest first, whatever order they were written in.
    CardEvent.objects.create(
        card=card,
        at=timezone.now() - dt.timedelta(days=2),
        user="old",
        old_status="SHIP",
        new_status="ACTIVE",
    )
    CardEvent.objects.create(card=card, at=timezone.now(), user="new", old_status="ACTIVE", new_status="HOLD")
    events = logged_in.get(url("card", company, pk=card.pk)).context["history"].events
    assert [event.user for event in events] == ["new", "old"]
    assert Card.objects.get(pk=card.pk).status == Status.ACTIVE


def test_the_home_panel_is_one_query_for_an_admin_and_none_for_others(
    client, company, admin, django_assert_num_queries
):  # fmt: skip
    CardFactory(company=company, balance_minutes=2)
    home = reverse("portal:home", kwargs={"company_slug": company.slug})
    client.force_login(UserFactory(company=company))
    client.get(home)
    # session, user, company, its permissions (2), active users, the call figures, the queues panel
    with django_assert_num_queries(8):
        client.get(home)
    client.force_login(admin)
    client.get(home)
    with django_assert_num_queries(9):  # and the call cards panel
        body = client.get(home).content.decode()
    assert 'data-figure="callcards-low">1<' in body


def test_a_threshold_of_zero_shows_no_low_count(logged_in, company):
    CallcardSettings.objects.create(company=company, low_balance_minutes=0)
    CardFactory(company=company, balance_minutes=0)
    body = logged_in.get(reverse("portal:home", kwargs={"company_slug": company.slug})).content.decode()
    assert 'data-figure="callcards-live">1<' in body and "callcards-low" not in body


def test_a_pin_sealed_under_another_key_is_said_so_not_a_500(logged_in, company, card, settings):
    settings.CALLCARDS_PIN_KEY = "another key than the one the card was sealed with"
    response = logged_in.post(url("card-pin", company, pk=card.pk))
    assert response.status_code == 409
    assert "another PIN key" in response.content.decode() and PIN not in response.content.decode()
    assert not CardEvent.objects.exists()


def test_a_holder_is_saved_even_if_another_field_is_odd(logged_in, company, card):
    Card.objects.filter(pk=card.pk).update(did="not digits")  # an old import's leftovers
    response = logged_in.post(
        url("card-holder", company, pk=card.pk), {"name": "Bo", "email": "", "comments": ""}
    )
    assert response.status_code == 302
    card.refresh_from_db()
    assert card.name == "Bo"


def test_a_cards_page_reads_a_fixed_number_of_queries(logged_in, company, card, django_assert_num_queries):
    def grow():
        CardCallFactory(card=card)
        CardEvent.objects.create(card=card, at=timezone.now(), user="x", old_status="USED", new_status="USED")

    LowBalanceAlert.objects.create(
        kind=LowBalanceAlert.Kind.HOLDER, company=company, card=card, to="a@b.example"
    )
    grow()
    # session, user, company, its permissions (2), the card, its events, calls, their count, alerts
    with django_assert_num_queries(10):
        assert logged_in.get(url("card", company, pk=card.pk)).status_code == 200
    for _ in range(3):
        grow()
    with django_assert_num_queries(10):
        assert logged_in.get(url("card", company, pk=card.pk)).status_code == 200
