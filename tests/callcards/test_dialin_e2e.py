"""Dialing in, end to end: pbxsim runs the contract's [platform-agi], the real pbx process serves
the `callcard` FastAGI script, and card holders key what extensions_callcards.conf says."""

import logging

import pytest

from callcards import pbx as card_pbx
from callcards.lifecycle import Status
from callcards.models import CardCall, DialInFailure, Lockout
from telephony.models import CallRecord
from telephony.testing import wait_for
from tests.callcards.conftest import (
    CARD_ID,
    HANGS_UP_BEFORE_KEYING,
    HANGS_UP_MID_ENTRY,
    HOLDER_STAYS,
    KEYS_NOTHING,
    KEYS_STAR_HASH_LETTERS,
    PIN,
    UNKNOWN_CARD,
    WRONG_PIN,
)

pytestmark = pytest.mark.django_db(transaction=True)


def ended(uniqueid):
    wait_for(
        lambda: CallRecord.objects.filter(uniqueid=uniqueid, state="ended").exists(),
        timeout=20,
        what=f"the end of {uniqueid}",
    )


ASK = [card_pbx.ASK_CARD, card_pbx.ASK_PIN]


def test_an_unknown_card_three_times_ends_with_a_goodbye(card, pbx, dial_in, agi_commands, caplog):
    caplog.set_level(logging.INFO)
    uniqueid = dial_in(UNKNOWN_CARD)
    ended(uniqueid)
    assert agi_commands.sounds(uniqueid) == [*ASK, card_pbx.INCORRECT] * 3 + [card_pbx.GOODBYE]
    assert (
        list(DialInFailure.objects.values_list("reason", "phone_number", "inbound_did"))
        == [("unknown_card", UNKNOWN_CARD, "5559000")] * 3
    )
    assert not CardCall.objects.exists()
    card.refresh_from_db()
    assert card.balance_minutes == 10
    assert "unknown_card" in caplog.text and PIN not in caplog.text


def test_a_wrong_pin_three_times_ends_with_a_goodbye(card, pbx, dial_in, agi_commands, caplog):
    caplog.set_level(logging.DEBUG, logger="callcards")
    uniqueid = dial_in(WRONG_PIN)
    ended(uniqueid)
    assert agi_commands.sounds(uniqueid) == [*ASK, card_pbx.INCORRECT] * 3 + [card_pbx.GOODBYE]
    assert DialInFailure.objects.filter(reason="wrong_pin", card_id=CARD_ID).count() == 3
    assert not CardCall.objects.exists()
    assert "99998888" not in caplog.text


@pytest.mark.parametrize(
    ("status", "balance", "sounds"),
    [
        (Status.HOLD, 10, [card_pbx.NOT_IN_SERVICE]),
        (Status.VOID, 10, [card_pbx.NOT_IN_SERVICE]),
        (Status.EMPTY, 0, [card_pbx.NOT_IN_SERVICE]),
        (Status.SHIP, 10, [card_pbx.NOT_IN_SERVICE]),
        (Status.ACTIVE, 0, list(card_pbx.EMPTY)),
    ],
)
def test_a_card_not_active_or_used_or_without_minutes_is_refused(
    card, pbx, dial_in, agi_commands, status, balance, sounds
):
    card.status, card.balance_minutes = status, balance
    card.save()
    uniqueid = dial_in(HOLDER_STAYS)
    ended(uniqueid)
    assert agi_commands.sounds(uniqueid) == [*ASK, *sounds, card_pbx.GOODBYE]
    assert DialInFailure.objects.get().reason == ("empty" if status == Status.ACTIVE else "not_dialable")
    assert not CardCall.objects.exists()
    card.refresh_from_db()
    assert (card.status, card.balance_minutes) == (status, balance)


def test_no_digits_before_the_timeout_three_times(card, pbx, dial_in, agi_commands):
    uniqueid = dial_in(KEYS_NOTHING)
    ended(uniqueid)
    assert agi_commands.sounds(uniqueid) == [card_pbx.ASK_CARD, card_pbx.INVALID] * 3 + [card_pbx.GOODBYE]
    assert not DialInFailure.objects.exists() and not CardCall.objects.exists()


def test_star_hash_and_letters_are_each_a_try(card, pbx, dial_in, agi_commands, caplog):
    caplog.set_level(logging.INFO)
    uniqueid = dial_in(KEYS_STAR_HASH_LETTERS)
    ended(uniqueid)
    assert agi_commands.sounds(uniqueid) == [card_pbx.ASK_CARD, card_pbx.INVALID] * 3 + [card_pbx.GOODBYE]
    assert "keys other than digits" in caplog.text
    assert not DialInFailure.objects.exists() and not CardCall.objects.exists()


@pytest.mark.parametrize("number", [HANGS_UP_MID_ENTRY, HANGS_UP_BEFORE_KEYING])
def test_hanging_up_mid_entry_ends_the_script_quietly(card, pbx, dial_in, agi_commands, number, caplog):
    caplog.set_level(logging.INFO)
    uniqueid = dial_in(number)
    ended(uniqueid)
    wait_for(lambda: "hung up during callcard" in caplog.text, what="the script's end")
    assert card_pbx.GOODBYE not in agi_commands.sounds(uniqueid)
    assert not DialInFailure.objects.exists() and not CardCall.objects.exists()
    assert "Traceback" not in caplog.text


def test_a_locked_caller_is_refused_without_saying_why(card, pbx, dial_in, agi_commands, settings):
    settings.CALLCARDS_LOCKOUT_FAILURES = 2
    first = dial_in(WRONG_PIN)
    ended(first)
    lockouts = {(lock.kind, lock.value) for lock in Lockout.objects.all()}
    assert lockouts == {("caller", WRONG_PIN), ("card", CARD_ID)}
    # the card's own holder, from another number, is refused too while the card is locked
    uniqueid = dial_in(HOLDER_STAYS)
    ended(uniqueid)
    assert agi_commands.sounds(uniqueid) == [*ASK, card_pbx.INCORRECT, card_pbx.GOODBYE]
    assert not CardCall.objects.exists()


def test_the_prompts_are_in_the_language_of_the_line_then_of_the_card(card, pbx, dial_in, agi_commands):
    card.batch.did, card.batch.language = "5559000", "fr"  # the cards sold with this line are French
    card.batch.save()
    card.language = "de"
    card.status = Status.VOID
    card.save()
    uniqueid = dial_in(HOLDER_STAYS)
    ended(uniqueid)
    languages = [c for c in agi_commands.by_channel[uniqueid] if "CHANNEL(language)" in c]
    # the line's before the card is known; the card's once its PIN was right
    assert languages == ['SET VARIABLE CHANNEL(language) "fr"', 'SET VARIABLE CHANNEL(language) "de"']
