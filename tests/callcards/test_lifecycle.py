"""The status table, cell by cell, and the one writer that follows it."""

import itertools

import pytest

from callcards import lifecycle
from callcards.lifecycle import Status
from callcards.services.cards import card_status_set
from tests.callcards.factories import CardFactory

LIFE = [Status.GENERATE, Status.PRINT, Status.SHIP, Status.ACTIVE, Status.USED, Status.EMPTY]
ALLOWED = {
    (Status.GENERATE, Status.PRINT), (Status.PRINT, Status.PRINT), (Status.PRINT, Status.SHIP),
    (Status.SHIP, Status.ACTIVE), (Status.ACTIVE, Status.USED), (Status.ACTIVE, Status.EMPTY),
    (Status.USED, Status.EMPTY),
}  # fmt: skip


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(Status.values, Status.values)))
def test_every_cell_of_the_table(current, wanted):
    if current == Status.HOLD:
        return  # its cells depend on where the card was held from: below
    expected = (
        (current, wanted) in ALLOWED
        or (wanted == Status.HOLD and current in lifecycle.LIVE)
        or (wanted == Status.VOID and current in lifecycle.LIVE)
        or (wanted == Status.CANCEL and current in (Status.GENERATE, Status.PRINT, Status.SHIP))
    )
    assert lifecycle.allowed(current, wanted) is expected


@pytest.mark.parametrize(
    "held_from", [Status.GENERATE, Status.PRINT, Status.SHIP, Status.ACTIVE, Status.USED]
)
def test_a_held_card_goes_back_only_where_it_was_held_from(held_from):
    for wanted in Status.values:
        back = wanted == held_from
        final = wanted == Status.VOID or (
            wanted == Status.CANCEL and held_from in (Status.GENERATE, Status.PRINT, Status.SHIP)
        )
        assert lifecycle.allowed(Status.HOLD, wanted, held_from) is (back or final), wanted


def test_the_final_statuses():
    assert {Status.EMPTY, Status.CANCEL, Status.VOID} == lifecycle.FINAL
    assert lifecycle.sources(Status.SHIP) == {Status.PRINT, Status.HOLD}


@pytest.mark.django_db
def test_a_status_change_records_who_and_when_and_a_hold_remembers_where_it_was():
    card = CardFactory(status=Status.SHIP)
    card_status_set(card=card, to=Status.ACTIVE, user="alice")
    card_status_set(card=card, to=Status.HOLD, user="bob", note="disputed")
    card.refresh_from_db()
    assert (card.status, card.held_from, card.activate_user) == (Status.HOLD, Status.ACTIVE, "alice")
    assert card.activate_time is not None
    with pytest.raises(lifecycle.TransitionRefused, match="cannot become USED"):
        card_status_set(card=card, to=Status.USED)
    card_status_set(card=card, to=Status.ACTIVE, user="bob")
    card.refresh_from_db()
    assert (card.status, card.held_from) == (Status.ACTIVE, "")
    assert [(e.old_status, e.new_status, e.user) for e in card.events.order_by("id")] == [
        (Status.SHIP, Status.ACTIVE, "alice"),
        (Status.ACTIVE, Status.HOLD, "bob"),
        (Status.HOLD, Status.ACTIVE, "bob"),
    ]
