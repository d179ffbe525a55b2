"""Which numbers a campaign may call, and at what price: blocked prefixes first, then the
tariff's longest matching prefix. A number with no rate is never dialed."""

import dataclasses

import phonenumbers
from phonenumbers import carrier, geocoder

from click2call.models import BlockedPrefix, Rate, Tariff

MAX_PREFIX = 15  # E.164 numbers have at most 15 digits


class NumberRefused(Exception):
    """A number the banner cannot take; `code` is stable for the widget and for programs."""

    def __init__(self, code: str, detail: str, status: int = 400):
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


def number_normalize(*, raw: str, country: str) -> str:
    """E.164 (`+33612345678`) from what a visitor typed, read in the campaign's default country."""
    text = str(raw).strip()
    if not text or len(text) > 40 or not text.isascii():
        raise NumberRefused("invalid_number", "Enter a phone number, e.g. +33 6 12 34 56 78.")
    try:
        parsed = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        raise NumberRefused("invalid_number", f"{text!r} is not a phone number.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise NumberRefused("invalid_number", f"{text!r} is not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def blocked_prefix_find(*, company, number: str) -> BlockedPrefix | None:
    digits = number.lstrip("+")
    prefixes = [digits[:n] for n in range(1, min(len(digits), MAX_PREFIX) + 1)]
    return BlockedPrefix.objects.filter(company=company, prefix__in=prefixes).first()


def rate_find(*, tariff: Tariff | int, number: str) -> Rate | None:
    """The rate of the longest prefix of `number` in the tariff: one indexed query of at most 15 keys."""
    digits = number.lstrip("+")
    prefixes = [digits[:n] for n in range(1, min(len(digits), MAX_PREFIX) + 1)]
    rates = Rate.objects.filter(tariff=tariff, prefix__in=prefixes).only("prefix", "destination", "price")
    return max(rates, key=lambda rate: len(rate.prefix), default=None)


@dataclasses.dataclass(frozen=True)
class Direction:
    destination: str
    country: str
    region: str
    carrier: str


def direction_of(*, number: str, rate: Rate | None) -> Direction:
    """Where a number leads: the rate's destination name, completed offline by libphonenumber."""
    parsed = phonenumbers.parse(number, None)
    return Direction(
        destination=rate.destination if rate else "",
        country=phonenumbers.region_code_for_number(parsed) or "",
        region=geocoder.description_for_number(parsed, "en")[:120],
        carrier=carrier.name_for_number(parsed, "en")[:120],
    )


def number_rate(*, campaign, number: str) -> tuple[Rate, Direction]:
    """Refuse a blocked or unrated destination (422), else its rate and direction."""
    if blocked_prefix_find(company=campaign.company_id, number=number):
        raise NumberRefused("blocked_prefix", "Calls to this number are not allowed.", status=422)
    rate = rate_find(tariff=campaign.tariff_id, number=number)
    if rate is None:
        raise NumberRefused("unsupported_destination", "This destination is not served.", status=422)
    return rate, direction_of(number=number, rate=rate)
