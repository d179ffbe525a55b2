"""Reads for click2call's portal pages and exports, each scoped to one company."""

import dataclasses
import datetime as dt
import re
import time
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, DecimalField, Prefetch, Q, Sum, Value
from django.db.models.functions import Coalesce

from click2call.models import (
    BlockedPrefix,
    CallAttempt,
    CallComment,
    CallReminder,
    CallRequest,
    Campaign,
    CommentField,
    CommentType,
    Invoice,
    Operator,
    Rate,
    RateImport,
    Tariff,
    hash_secret_key,
)
from click2call.services.rating import leg_cost, rates_find
from config.periods import day_bounds
from telephony.models import CallRecord, PbxServer

APP = "click2call"

# The banner's campaigns by key, in this process: {hash of the key: (valid until, campaign)}.
_campaigns_by_key: dict[str, tuple[float, Campaign]] = {}
# Only keys that found an active campaign are kept, so this bounds keys rotated away meanwhile.
CAMPAIGNS_BY_KEY_MAX = 10_000


def campaign_for_key(*, key: str) -> Campaign | None:
    """The active campaign of an active company whose public or secret key hash matches `key`
    (the caller still checks which key it is). Kept in this process for C2C_CAMPAIGN_CACHE_SECONDS:
    the banner's every POST looked it up, and a rotated key or a deactivation made in another
    process takes effect here within that time (at once when made in this one)."""
    digest = hash_secret_key(key)
    now = time.monotonic()
    cached = _campaigns_by_key.get(digest)
    if cached and cached[0] > now:
        return cached[1]
    # No select_related("company"): the banner needs only the campaign's own columns.
    campaign = Campaign.objects.filter(
        Q(public_key=key) | Q(secret_key_hash=digest), active=True, company__active=True
    ).first()
    ttl = settings.C2C_CAMPAIGN_CACHE_SECONDS
    if campaign is not None and ttl:
        if len(_campaigns_by_key) >= CAMPAIGNS_BY_KEY_MAX:
            _campaigns_by_key.clear()
        _campaigns_by_key[digest] = (now + ttl, campaign)
    return campaign


def campaigns_by_key_forget(**kwargs) -> None:
    """A campaign or company changed in this process: look keys up afresh (receiver of post_save)."""
    _campaigns_by_key.clear()


def call_requests_for_company(
    *,
    company,
    status: str = "",
    campaign: Campaign | int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    direction: str = "",
):
    """The company's call requests, newest first: those asked from `start`'s midnight to the midnight
    after `end` in the company's time zone (whoever asks, a page or the API), and `direction` matches
    part of the destination, country, region or carrier ("Orange", "Paris", "FR")."""
    requests = CallRequest.objects.filter(company=company).select_related("campaign")
    if status:
        requests = requests.filter(status=status)
    if campaign:
        requests = requests.filter(campaign=campaign)
    if start:
        requests = requests.filter(created_at__gte=day_bounds(company, start, start)[0])
    if end:
        requests = requests.filter(created_at__lt=day_bounds(company, end, end)[1])
    if direction:
        requests = requests.filter(
            Q(destination__icontains=direction)
            | Q(country__iexact=direction)
            | Q(region__icontains=direction)
            | Q(carrier__icontains=direction)
        )
    return requests.order_by("-created_at", "-id")


@dataclasses.dataclass(frozen=True)
class CallTotals:
    count: int
    completed: int
    amount: Decimal  # the COMPLETED requests' prices, in the company's currency


def call_requests_totals(*, requests) -> CallTotals:
    """The total row of a list of requests (as filtered): how many, how many COMPLETED, what they
    cost. One aggregate query."""
    completed = Q(status=CallRequest.Status.COMPLETED)
    money = DecimalField(max_digits=14, decimal_places=2)
    figures = requests.order_by().aggregate(
        count=Count("pk"),
        completed=Count("pk", filter=completed),
        amount=Coalesce(Sum("price", filter=completed), Value(Decimal("0.00")), output_field=money),
    )
    amount = Decimal(figures["amount"]).quantize(Decimal("0.01"))
    return CallTotals(figures["count"], figures["completed"], amount)


@dataclasses.dataclass
class AttemptLegs:
    attempt: CallAttempt
    first: CallRecord | None
    seconds: list[CallRecord]

    @property
    def legs(self) -> list[CallRecord]:
        return [self.first, *self.seconds] if self.first else self.seconds


def call_request_attempts(*, request: CallRequest) -> list[AttemptLegs]:
    """Each try with its real calls: the first party's leg, and every leg it dialed (its children:
    operators rung one after the other are one leg each), in the order they were rung."""
    attempts = list(request.attempts.select_related("requested_by"))
    refs = {attempt.app_ref: attempt for attempt in attempts}
    records = CallRecord.objects.filter(company=request.company_id, app=APP, app_ref__in=refs).order_by(
        "started_at", "id"
    )
    firsts, seconds = {}, defaultdict(list)
    for record in records:
        if record.parent_id is None:
            firsts.setdefault(record.app_ref, record)
        else:
            seconds[record.parent_id].append(record)
    legs = []
    for attempt in attempts:
        first = firsts.get(attempt.app_ref)
        legs.append(AttemptLegs(attempt, first, seconds[first.pk] if first else []))
    _legs_rate(request=request, legs=[leg for item in legs for leg in item.legs])
    return legs


# A leg that rang a number, as the dial route was given it: one the tariff rates.
_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")


def _legs_rate(*, request: CallRequest, legs: list[CallRecord]) -> None:
    """Each leg's `party` (visitor or company), `rate_price` per minute and `cost` (None: not rated or
    not ended). The visitor's leg is at the rate the request was taken at (CallRequest.rate_price);
    the company's legs to numbers (its operators) at the campaign's tariff as it is now; a leg to a
    dial string (PJSIP/reception) or the Local channel that rings the operators is not rated."""
    numbers = {leg.callee for leg in legs if leg.callee != request.number and _NUMBER.fullmatch(leg.callee)}
    rates = rates_find(tariff=request.campaign.tariff_id, numbers=numbers) if numbers else {}
    for leg in legs:
        if leg.callee == request.number:
            leg.party, leg.rate_price = Campaign.FirstParty.VISITOR, request.rate_price
        else:
            rate = rates.get(leg.callee)
            leg.party, leg.rate_price = Campaign.FirstParty.COMPANY, rate.price if rate else None
        ended = leg.ended_at is not None
        leg.cost = leg_cost(billsec=leg.billsec, price_per_minute=leg.rate_price) if ended else None


def call_comments_of(*, request: CallRequest):
    return request.comments.select_related("comment_type", "author").prefetch_related("comment_type__fields")


def call_reminder_of(*, request: CallRequest) -> CallReminder | None:
    """The request's reminder e-mail, if one was written (at most one: click2call.services.reminders)."""
    return CallReminder.objects.filter(request=request).first()


def call_requests_with_comments(*, requests):
    """The requests with their comments in two more queries, for the CSV export."""
    return requests.prefetch_related(
        Prefetch("comments", queryset=CallComment.objects.select_related("comment_type"))
    )


def comment_columns(*, company) -> list[tuple[str, str]]:
    """(type name, field name) of every field of the company's comment types, in their order."""
    fields = CommentField.objects.filter(comment_type__company=company).select_related("comment_type")
    return [
        (field.comment_type.name, field.name)
        for field in fields.order_by("comment_type__name", "position", "id")
    ]


def comment_types_for_company(*, company, active_only: bool = False):
    types = CommentType.objects.filter(company=company).prefetch_related("fields")
    return types.filter(active=True) if active_only else types


def campaigns_for_company(*, company):
    return (
        Campaign.objects.filter(company=company)
        .select_related("tariff", "server")
        .annotate(request_count=Count("requests"))
        .order_by("-active", "name")
    )


def campaign_operators(*, campaign: Campaign):
    return campaign.campaignoperator_set.select_related("operator").order_by("position", "id")


def operators_for_company(*, company):
    return Operator.objects.filter(company=company).order_by("-active", "name")


def tariffs_for_company(*, company):
    return Tariff.objects.filter(company=company).annotate(rate_count=Count("rates")).order_by("name")


def rate_imports_of_tariff(*, tariff: Tariff):
    """A tariff's imports, the latest first, without the files they carry."""
    return RateImport.objects.filter(tariff=tariff).defer("content").order_by("-created_at", "-pk")


def rates_of_tariff(*, tariff: Tariff, prefix: str = ""):
    """A tariff's rates by prefix; `prefix` finds the rates starting with those digits and the shorter
    prefixes that would rate such a number."""
    rates = Rate.objects.filter(tariff=tariff)
    if prefix:
        shorter = [prefix[:n] for n in range(1, len(prefix))]
        rates = rates.filter(Q(prefix__startswith=prefix) | Q(prefix__in=shorter))
    return rates.order_by("prefix")


def blocked_prefixes_for_company(*, company):
    return BlockedPrefix.objects.filter(company=company).order_by("prefix")


def campaign_placement(*, company) -> tuple[PbxServer, str] | None:
    """Where a company's new campaign dials: like its latest campaign, or on the platform's one
    enabled PBX server when there is just one; None when the operator must decide."""
    latest = Campaign.objects.filter(company=company).select_related("server").order_by("-created_at").first()
    if latest is not None:
        return latest.server, latest.route
    servers = list(PbxServer.objects.filter(enabled=True)[:2])
    return (servers[0], "default") if len(servers) == 1 else None


def invoices_for_company(*, company):
    """The company's invoices and credit notes, newest first, without their PDFs (read one by one)."""
    return (
        Invoice.objects.filter(company=company)
        .select_related("credited")
        .defer("pdf", "credited__pdf")
        .order_by("-issued_at", "-id")
    )
