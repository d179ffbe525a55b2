"""The call cards API: callcard admins only (404 to anyone else), the company's rows only, never a
PIN but on its own recorded POST, hostile filters refused cleanly."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callcards.lifecycle import Status
from callcards.models import CardBatch, CardEvent
from callcards.services.holders import PIN_SHOWN
from tests import hostile
from tests.callcards.factories import CardBatchFactory, CardCallFactory, CardFactory, callcard_admin
from tests.factories import UserFactory
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

API = "/api/callcards"
PIN = "73920518"
LISTS = ["batches", "cards", "calls"]


@pytest.fixture
def admin(company):
    return callcard_admin(company, username="carla")


@pytest.fixture
def api(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def card(company):
    batch = CardBatchFactory(company=company, run="R1", batch="B1", count=1, initial_minutes=30)
    return CardFactory(company=company, batch=batch, pin=PIN, balance_minutes=25, name="Ada")


def test_every_card_of_another_company_is_a_404(client, admin, card):
    outsider = callcard_admin()
    assert_other_company_gets_404(client, f"{API}/cards/{card.pk}/", owner=admin, outsider=outsider)
    assert_other_company_gets_404(
        client, f"{API}/cards/{card.pk}/pin/", owner=admin, outsider=outsider, method="post"
    )


@pytest.mark.parametrize("path", [*(f"{name}/" for name in LISTS), "cards/{pk}/", "cards/{pk}/pin/"])
def test_a_user_without_the_permission_gets_404_everywhere(client, company, card, path):
    client.force_login(UserFactory(company=company))
    url = f"{API}/{path.format(pk=card.pk)}"
    send = client.post if path.endswith("pin/") else client.get
    response = send(url)
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found."}
    assert not CardEvent.objects.exists()


@pytest.mark.parametrize("name", LISTS)
def test_lists_show_only_the_companys_rows(api, card, name):
    CardCallFactory(card=card)
    CardCallFactory(card=CardFactory(pin="11112222"))  # another company's card and call
    rows = api.get(f"{API}/{name}/").json()["results"]
    assert len(rows) == 1


def test_cards_never_carry_a_pin(api, card):
    listed = api.get(f"{API}/cards/").content.decode()
    detail = api.get(f"{API}/cards/{card.pk}/").content.decode()
    for body in (listed, detail):
        assert card.card_id in body and PIN not in body and card.pin_sealed not in body
        assert card.pin_digest not in body and '"pin' not in body


def test_the_pin_is_a_post_recorded_on_the_card(api, card):
    assert api.get(f"{API}/cards/{card.pk}/pin/").status_code == 405
    response = api.post(f"{API}/cards/{card.pk}/pin/")
    assert response.status_code == 200
    assert response.json() == {"card_id": card.card_id, "pin": PIN}
    assert response["Cache-Control"] == "no-store"
    event = CardEvent.objects.get(card=card)
    assert (event.user, event.note) == ("carla", PIN_SHOWN)
    history = api.get(f"{API}/cards/{card.pk}/").json()["events"]
    assert [(e["user"], e["note"]) for e in history] == [("carla", PIN_SHOWN)]


def test_batches_carry_their_usage(api, company, card):
    CardCallFactory(card=card, agent_talk_sec=61)
    [row] = api.get(f"{API}/batches/").json()["results"]
    assert row["batch"]["run"] == "R1" and row["cards"] == 1
    assert (row["minutes_sold"], row["minutes_used"], row["minutes_remaining"]) == (30, 2, 25)
    assert (row["calls"], row["talk_seconds"], row["by_status"]) == (1, 61, {"ACTIVE": 1})


def test_filters(api, company, card):
    held = CardFactory(company=company, status=Status.HOLD, held_from=Status.ACTIVE)
    assert [c["card_id"] for c in api.get(f"{API}/cards/", {"status": "HOLD"}).json()["results"]] == [
        held.card_id
    ]
    by_batch = api.get(f"{API}/cards/", {"batch": card.batch_id}).json()["results"]
    assert [c["card_id"] for c in by_batch] == [card.card_id]
    paris = ZoneInfo("Europe/Paris")
    late = CardCallFactory(card=card, call_time=dt.datetime(2026, 11, 23, 23, 30, tzinfo=paris))
    CardCallFactory(card=held, call_time=dt.datetime(2026, 11, 24, 0, 30, tzinfo=paris))
    day = api.get(f"{API}/calls/", {"start": "2026-11-23", "end": "2026-11-23"}).json()["results"]
    assert [c["uniqueid"] for c in day] == [late.uniqueid]


@pytest.mark.parametrize(
    "path, query",
    [
        ("cards/", {"status": "LOST"}),
        ("cards/", {"status": ""}),
        ("cards/", {"card_id": "12ab"}),
        ("cards/", {"card_id": "1\r\n2"}),
        ("cards/", {"batch": "٥"}),
        ("cards/", {"batch": "99999999999999999999999"}),
        ("calls/", {"start": "0001-01-01"}),
        ("calls/", {"start": "9999-12-31"}),
        ("calls/", {"start": "2026-11-24", "end": "2026-11-23"}),
        ("calls/", {"start": "2024-01-01", "end": "2026-01-01"}),
        ("calls/", {"agent": "x" * 131}),
        *(("cards/", {"limit": value}) for value in hostile.BAD_INTEGER_QUERY_VALUES.values()),
    ],
)
def test_a_hostile_filter_is_a_clean_400(api, card, path, query):
    response = api.get(f"{API}/{path}", query)
    assert response.status_code == 400, response.content
    hostile.assert_error_body(response)


def test_another_companys_batch_is_no_filter(api, card):
    stranger = CardFactory(pin="11112222")
    for path in ("cards/", "calls/"):
        response = api.get(f"{API}/{path}", {"batch": stranger.batch_id})
        assert response.status_code == 400 and response.json()["fields"] == {"batch": ["No such batch."]}


def test_list_queries_are_pinned(api, company, django_assert_num_queries):
    def add():
        batch = CardBatchFactory(company=company)
        CardCallFactory(card=CardFactory(company=company, batch=batch))

    # session, user, company, permissions (2), count, page (and the usage's two for batches)
    expected = {"cards": 7, "calls": 7, "batches": 9}
    for rows in (1, 4):
        while CardBatch.objects.filter(company=company).count() < rows:
            add()
        for name, queries in expected.items():
            with django_assert_num_queries(queries):
                assert len(api.get(f"{API}/{name}/").json()["results"]) == rows


def test_a_pin_sealed_under_another_key_is_a_409(api, card, settings):
    settings.CALLCARDS_PIN_KEY = "another key than the one the card was sealed with"
    response = api.post(f"{API}/cards/{card.pk}/pin/")
    assert response.status_code == 409 and response.json()["code"] == "pin_key_mismatch"
    assert PIN not in response.content.decode()
    assert not CardEvent.objects.exists()
