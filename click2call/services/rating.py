"""Which numbers a campaign may call, and at what price: blocked prefixes first, then the
tariff's longest matching prefix. A number with no rate is never dialed."""

import dataclasses
from decimal import Decimal

import phonenumbers
from django.db import connection

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
    if parsed.extension:
        # Dropping it would ring the switchboard, not the person asked for.
        raise NumberRefused(
            "invalid_number",
            "Extensions (;ext=, ext., x) are not dialed: give the number that rings you directly.",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def operator_number_normalize(*, raw: str) -> str:
    """E.164 from an operator's number as a company user typed it: in international form, as an
    operator serves every campaign of the company, whatever their default country."""
    text = str(raw).strip()
    if not text.startswith("+"):
        raise NumberRefused(
            "invalid_number",
            "Write the number in international form: + and the country code (+33 6 12 34 56 78).",
        )
    return number_normalize(raw=text, country="ZZ")


def number_prefixes(number: str) -> list[str]:
    digits = number.lstrip("+")
    return [digits[:n] for n in range(1, min(len(digits), MAX_PREFIX) + 1)]


def _prefix_rows(number: str, *, company_id: int | None = None, tariff_id: int | None = None) -> list[tuple]:
    """(kind, prefix, id, destination, price) of the company's blocked prefixes ("blocked") and of
    the tariff's rates ("rate") that `number` starts with: one query on the (owner, prefix) unique
    indexes. Plain SQL, because building it through the ORM took longer than the database took to
    answer it (bench/click2call_bench.py)."""
    prefixes = number_prefixes(number)
    if not prefixes:
        return []
    qn = connection.ops.quote_name
    keys = ", ".join(["%s"] * len(prefixes))
    selects, params = [], []
    if company_id is not None:
        selects.append(
            f"SELECT 'blocked', {qn('prefix')}, NULL, NULL, NULL FROM {qn(BlockedPrefix._meta.db_table)} "
            f"WHERE {qn('company_id')} = %s AND {qn('prefix')} IN ({keys})"
        )
        params += [company_id, *prefixes]
    if tariff_id is not None:
        selects.append(
            f"SELECT 'rate', {qn('prefix')}, {qn('id')}, {qn('destination')}, {qn('price')} "
            f"FROM {qn(Rate._meta.db_table)} WHERE {qn('tariff_id')} = %s AND {qn('prefix')} IN ({keys})"
        )
        params += [tariff_id, *prefixes]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects), params)
        return cursor.fetchall()


def _longest(rows: list[tuple], kind: str) -> tuple | None:
    return max((row for row in rows if row[0] == kind), key=lambda row: len(row[1]), default=None)


def _rate_of(row: tuple, tariff_id: int) -> Rate:
    _, prefix, pk, destination, price = row
    # SQLite hands a decimal column back as a number; its repr is the shortest exact decimal.
    price = price if isinstance(price, Decimal) else Decimal(repr(price)).quantize(PRICE_PLACES)
    return Rate(id=pk, tariff_id=tariff_id, prefix=prefix, destination=destination, price=price)


def blocked_prefix_find(*, company, number: str) -> str | None:
    """The longest of the company's blocked prefixes that `number` starts with."""
    row = _longest(_prefix_rows(number, company_id=getattr(company, "pk", company)), "blocked")
    return row[1] if row else None


def rate_find(*, tariff: Tariff | int, number: str) -> Rate | None:
    """The rate of the longest prefix of `number` in the tariff: one indexed query of at most 15 keys."""
    tariff_id = getattr(tariff, "pk", tariff)
    row = _longest(_prefix_rows(number, tariff_id=tariff_id), "rate")
    return _rate_of(row, tariff_id) if row else None


@dataclasses.dataclass(frozen=True)
class Direction:
    destination: str
    country: str
    region: str
    carrier: str


def direction_of(*, number: str, rate: Rate | None) -> Direction:
    """Where a number leads: the rate's destination name, completed offline by libphonenumber."""
    # About 115 MiB and 0.35 s to import: only the processes that describe a number (a web worker
    # taking a banner's request) pay for them, not the pbx process, Celery or the admin.
    from phonenumbers import carrier, geocoder

    parsed = phonenumbers.parse(number, None)
    return Direction(
        destination=rate.destination if rate else "",
        country=phonenumbers.region_code_for_number(parsed) or "",
        region=geocoder.description_for_number(parsed, "en")[:120],
        carrier=carrier.name_for_number(parsed, "en")[:120],
    )


def operator_number_check(*, campaign, number: str) -> str:
    """The E.164 number to dial for a company's operator on this campaign, checked like a
    visitor's: a number (not a dial string), not blocked, with a rate in the campaign's tariff.
    Read in the campaign's default country, so that a row saved before numbers were checked
    (0899123456) is judged as the trunk would dial it. Raises NumberRefused."""
    e164 = number_normalize(raw=number, country=campaign.default_country)
    number_rate_check(campaign=campaign, number=e164)
    return e164


def number_rate_check(*, campaign, number: str) -> Rate:
    """Refuse a blocked or unrated destination (422), else its rate."""
    rows = _prefix_rows(number, company_id=campaign.company_id, tariff_id=campaign.tariff_id)
    if _longest(rows, "blocked"):
        raise NumberRefused("blocked_prefix", "Calls to this number are not allowed.", status=422)
    row = _longest(rows, "rate")
    if row is None:
        raise NumberRefused("unsupported_destination", "This destination is not served.", status=422)
    return _rate_of(row, campaign.tariff_id)


def number_rate(*, campaign, number: str) -> tuple[Rate, Direction]:
    """Refuse a blocked or unrated destination (422), else its rate and direction."""
    rate = number_rate_check(campaign=campaign, number=number)
    return rate, direction_of(number=number, rate=rate)


def rates_find(*, tariff: Tariff | int, numbers) -> dict[str, Rate | None]:
    """Each number's rate in the tariff (its longest matching prefix), or None: one query for them all."""
    numbers = set(numbers)
    prefixes = {prefix for number in numbers for prefix in number_prefixes(number)}
    tariff_id = getattr(tariff, "pk", tariff)
    by_prefix = {rate.prefix: rate for rate in Rate.objects.filter(tariff_id=tariff_id, prefix__in=prefixes)}
    found = {}
    for number in numbers:
        matches = [by_prefix[prefix] for prefix in number_prefixes(number) if prefix in by_prefix]
        found[number] = matches[-1] if matches else None
    return found


def leg_cost(*, billsec: int, price_per_minute: Decimal | None) -> Decimal | None:
    """What a leg cost at its rate: billed per started minute of talk (61 s are 2 minutes), as
    carriers bill the company; an unanswered leg costs nothing, an unrated one is None."""
    if price_per_minute is None:
        return None
    minutes = -(-billsec // 60)
    return (price_per_minute * minutes).quantize(PRICE_PLACES)
