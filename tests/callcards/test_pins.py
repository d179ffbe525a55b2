"""Card ids carry a Luhn digit; PINs are kept sealed and digested with a key outside the database."""

import pytest

from callcards import pins


def test_luhn_digit_matches_the_known_example():
    assert pins.luhn_digit("7992739871") == "3"
    assert pins.card_id_valid("79927398713")
    assert not pins.card_id_valid("79927398710")
    assert not pins.card_id_valid("7992739871a")


def test_a_drawn_card_id_is_valid_and_a_single_mistyped_digit_is_caught():
    card_id = pins.card_id_draw()
    assert len(card_id) == pins.CARD_ID_DIGITS and pins.card_id_valid(card_id)
    typo = card_id[:3] + str((int(card_id[3]) + 1) % 10) + card_id[4:]
    assert not pins.card_id_valid(typo)


def test_a_pin_is_sealed_and_digested_with_the_configured_key_only(settings):
    sealed, digest = pins.pin_seal("12345678"), pins.pin_digest("12345678")
    assert "12345678" not in sealed and "12345678" not in digest
    assert pins.pin_reveal(sealed) == "12345678"
    settings.CALLCARDS_PIN_KEY = "another key of at least thirty-two characters"
    assert pins.pin_digest("12345678") != digest
    with pytest.raises(pins.PinKeyMismatch):
        pins.pin_reveal(sealed)
