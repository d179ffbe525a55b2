"""Which numbers a campaign may call, and at what price: blocked prefixes first, then the
tariff's longest matching prefix. A number with no rate is never dialed."""

import dataclasses
from decimal import Decimal

import phonenumbers
from django.db import connection
from phonenumbers import carrier, geocoder

from click2call.models import BlockedPrefix, Rate, Tariff

MAX_PREFIX = 15  # E.164 numbers have at most 15 digits
PRICE_PLACES = Decimal("0.00001")  # Rate.price's decimal places


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


def number_prefixes(number: str) -> list[str]:
    digits = number.lstrip("+")
    return [digits[:n] for n in range(1, min(len(digits), MAX_PREFIX) + 1)]


def _prefix_rows(model, *, owner: str, owner_id: int, columns: list[str], number: str) -> list[tuple]:
    """`columns` of the model's rows whose prefix starts `number`, longest first: one query on the
    (owner, prefix) unique index, in plain SQL because building it through the ORM took longer
    than the database took to answer it (bench/click2call_bench.py)."""
    prefixes = number_prefixes(number)
    if not prefixes:
        return []
    qn = connection.ops.quote_name
    sql = (
        f"SELECT {', '.join(map(qn, columns))} FROM {qn(model._meta.db_table)} "
        f"WHERE {qn(owner)} = %s AND {qn('prefix')} IN ({', '.join(['%s'] * len(prefixes))}) "
        f"ORDER BY LENGTH({qn('prefix')}) DESC"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [owner_id, *prefixes])
        return cursor.fetchall()


def blocked_prefix_find(*, company, number: str) -> str | None:
    """The longest of the company's blocked prefixes that `number` starts with."""
    rows = _prefix_rows(
        BlockedPrefix,
        owner="company_id",
        owner_id=getattr(company, "pk", company),
        columns=["prefix"],
        number=number,
    )
    return rows[0][0] if rows else None


def rate_find(*, tariff: Tariff | int, number: str) -> Rate | None:
    """The rate of the longest prefix of `number` in the tariff: one indexed query of at most 15 keys."""
    tariff_id = getattr(tariff, "pk", tariff)
    rows = _prefix_rows(
        Rate,
        owner="tariff_id",
        owner_id=tariff_id,
        columns=["id", "prefix", "destination", "price"],
        number=number,
    )
    if not rows:
        return None
    pk, prefix, destination, price = rows[0]
    # SQLite hands a decimal column back as a float; its repr is the shortest exact decimal.
    price = price if isinstance(price, Decimal) else Decimal(repr(price)).quantize(PRICE_PLACES)
    return Rate(id=pk, tariff_id=tariff_id, prefix=prefix, destination=destination, price=price)


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
