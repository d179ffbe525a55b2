"""Card ids and PINs.

A card id carries a Luhn check digit, so a mistyped id is told apart from an unknown one without a
lookup. A PIN is drawn from `secrets`; the database keeps it only encrypted (Fernet, AES-128-CBC
with HMAC) and as a keyed digest (HMAC-SHA256) to look it up, both keys derived from
CALLCARDS_PIN_KEY, which lives in the environment (or, for `make run`, a file under var/), never in
the database: a dump alone reveals no usable PIN. Nothing here logs a PIN; callers of `pin_reveal`
show it to people entitled to it (the printed card, the callcard admin's card page) and nowhere else.
"""

import base64
import functools
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

CARD_ID_DIGITS = 12  # 11 drawn + the check digit
PIN_DIGITS = 8


def luhn_digit(payload: str) -> str:
    """The Luhn check digit for a string of digits."""
    total = 0
    for i, char in enumerate(reversed(payload)):
        n = int(char)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return str((10 - total % 10) % 10)


def card_id_valid(card_id: str) -> bool:
    return card_id.isdigit() and len(card_id) >= 2 and luhn_digit(card_id[:-1]) == card_id[-1]


def card_id_draw() -> str:
    payload = str(secrets.randbelow(9 * 10 ** (CARD_ID_DIGITS - 2)) + 10 ** (CARD_ID_DIGITS - 2))
    return payload + luhn_digit(payload)


def pin_draw(digits: int = PIN_DIGITS) -> str:
    # One draw for the whole PIN: a draw per digit (secrets.choice) costs 20 us a PIN, 2 s of a
    # batch of 100,000 cards; the same uniform distribution.
    return f"{secrets.randbelow(10**digits):0{digits}d}"


@functools.cache
def _keys(key: str) -> tuple[Fernet, bytes]:
    def derive(label: bytes) -> bytes:
        return hmac.new(key.encode(), label, hashlib.sha256).digest()

    return Fernet(base64.urlsafe_b64encode(derive(b"callcards pin encryption"))), derive(
        b"callcards pin lookup"
    )


def pin_digest(pin: str) -> str:
    """The keyed digest a PIN is looked up (and kept unique) by."""
    return hmac.new(_keys(settings.CALLCARDS_PIN_KEY)[1], pin.encode(), hashlib.sha256).hexdigest()


def pin_seal(pin: str) -> str:
    return _keys(settings.CALLCARDS_PIN_KEY)[0].encrypt(pin.encode()).decode()


class PinKeyMismatch(Exception):
    """The PIN was sealed with another CALLCARDS_PIN_KEY than the one configured."""


def pin_reveal(sealed: str) -> str:
    try:
        return _keys(settings.CALLCARDS_PIN_KEY)[0].decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise PinKeyMismatch("this PIN was encrypted with another CALLCARDS_PIN_KEY") from None
