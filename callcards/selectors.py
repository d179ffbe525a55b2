"""Call cards' reads for the portal and the reports: batches with their usage, the cards list, a
card's page, the call log (the seed's callcard_log) and the home panel.

Every read is scoped to one company and is a fixed number of queries whatever the number of batches,
cards or calls (the tests pin them). Days are the company's: a period runs from the first day's
midnight to the midnight after the last day, in the company's time zone.
"""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from accounts.models import Company
from callcards.lifecycle import DIALABLE, LIVE, Status
from callcards.models import CallcardSettings, Card, CardBatch, CardCall, CardEvent, LowBalanceAlert
from config.periods import day_bounds

BILLED = CardCall.State.BILLED
# The order statuses are counted and drawn in: a card's life, then the dead ends.
STATUS_ORDER = [
    Status.GENERATE, Status.PRINT, Status.SHIP, Status.ACTIVE, Status.USED,
    Status.HOLD, Status.EMPTY, Status.CANCEL, Status.VOID,
]  # fmt: skip


def _per_batch(queryset: QuerySet, expression):
    """An aggregate of `queryset` per batch, as a subquery of CardBatch (0 when none)."""
    rows = queryset.filter(batch=OuterRef("pk")).order_by().values("batch").annotate(v=expression).values("v")
    return Coalesce(Subquery(rows[:1], output_field=IntegerField()), 0)


def _calls_per_batch(expression):
    rows = (
        CardCall.objects.filter(card__batch=OuterRef("pk"), state=BILLED)
        .order_by()
        .values("card__batch")
        .annotate(v=expression)
        .values("v")
    )
    return Coalesce(Subquery(rows[:1], output_field=IntegerField()), 0)


@dataclass
class BatchUsage:
    """What a batch's cards were worth and what became of them."""

    batch: CardBatch
    cards: int
    minutes_sold: int
    minutes_used: int
    minutes_remaining: int
    calls: int
    talk_seconds: int
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def statuses(self) -> list[tuple[str, int]]:
        """(status, cards) for every status some card of the batch is in, in the life cycle's order."""
        return [(status, self.by_status[status]) for status in STATUS_ORDER if self.by_status.get(status)]

    @property
    def statuses_in_words(self) -> list[tuple[str, int]]:
        return [(Status(status).label, n) for status, n in self.statuses]


def batches_with_usage(*, company: Company, batches: QuerySet | None = None) -> list[BatchUsage]:
    """The company's batches (newest first, or those of `batches`) with their usage: minutes sold
    (cards made x initial minutes), used (billed talk minutes), remaining (balances of live cards),
    cards by status, billed calls and talk time. Two queries."""
    batches = CardBatch.objects.filter(company=company) if batches is None else batches
    rows = list(
        batches.filter(company=company)
        .select_related("queue")
        .annotate(
            made=_per_batch(Card.objects.all(), Count("pk")),
            remaining=_per_batch(Card.objects.filter(status__in=sorted(LIVE)), Sum("balance_minutes")),
            used=_calls_per_batch(Sum("agent_talk_min")),
            call_count=_calls_per_batch(Count("pk")),
            talk=_calls_per_batch(Sum("agent_talk_sec")),
        )
    )
    counts: dict[int, dict[str, int]] = {batch.pk: {} for batch in rows}
    if rows:
        per_status = (
            Card.objects.filter(company=company, batch__in=[batch.pk for batch in rows])
            .order_by()
            .values_list("batch", "status")
            .annotate(n=Count("pk"))
        )
        for batch_id, status, n in per_status:
            counts[batch_id][status] = n
    return [
        BatchUsage(
            batch=batch,
            cards=batch.made,
            minutes_sold=batch.made * batch.initial_minutes,
            minutes_used=batch.used,
            minutes_remaining=batch.remaining,
            calls=batch.call_count,
            talk_seconds=batch.talk,
            by_status=counts[batch.pk],
        )
        for batch in rows
    ]


def batches_for_company(*, company: Company) -> QuerySet:
    return CardBatch.objects.filter(company=company)


def cards_for_company(
    *, company: Company, batch: CardBatch | None = None, status: str = "", card_id: str = ""
) -> QuerySet:
    """The company's cards by batch and place in it; `card_id` finds the cards whose id starts with
    those digits (a card id read off a card, or its first digits)."""
    cards = Card.objects.filter(company=company).select_related("batch")
    if batch is not None:
        cards = cards.filter(batch=batch)
    if status:
        cards = cards.filter(status=status)
    if card_id:
        cards = cards.filter(card_id__startswith=card_id)
    return cards.order_by("batch_id", "sequence")


def card_for_company(*, company: Company, pk: int) -> Card | None:
    return Card.objects.filter(company=company, pk=pk).select_related("batch", "queue").first()


@dataclass
class CardPage:
    card: Card
    events: list[CardEvent]
    calls: list[CardCall]
    alerts: list[LowBalanceAlert]
    call_count: int


CARD_PAGE_CALLS = 50


def card_page(*, card: Card) -> CardPage:
    """A card's history: every status change (who, when), its latest calls and its alerts."""
    calls = CardCall.objects.filter(card=card).order_by("-call_time", "-id")
    return CardPage(
        card=card,
        events=list(CardEvent.objects.filter(card=card).order_by("-at", "-id")),
        calls=list(calls[:CARD_PAGE_CALLS]),
        alerts=list(LowBalanceAlert.objects.filter(card=card).order_by("-created_at", "-id")),
        call_count=calls.count(),
    )


def card_calls_for_company(
    *,
    company: Company,
    start: dt.date | None = None,
    end: dt.date | None = None,
    card_id: str = "",
    agent: str = "",
    batch: CardBatch | None = None,
) -> QuerySet:
    """The company's card calls, newest first: those let in from `start`'s midnight to the midnight
    after `end` (the company's days), on cards whose id starts with `card_id`, taken by `agent`."""
    calls = CardCall.objects.filter(company=company).select_related("card")
    if start:
        calls = calls.filter(call_time__gte=day_bounds(company, start, start)[0])
    if end:
        calls = calls.filter(call_time__lt=day_bounds(company, end, end)[1])
    if card_id:
        calls = calls.filter(card__card_id__startswith=card_id)
    if agent:
        calls = calls.filter(agent__iexact=agent)
    if batch is not None:
        calls = calls.filter(card__batch=batch)
    return calls.order_by("-call_time", "-id")


def home_panel(*, company: Company, user) -> dict:
    """The portal home's call cards panel, for the users who may see cards: cards made, live cards and
    those running low (dialable, at or below the company's threshold). One query; none for the others."""
    if not user.has_perm("callcards.callcard_admin"):
        return {"visible": False}
    default = CallcardSettings._meta.get_field("low_balance_minutes").default
    threshold = Coalesce(
        Subquery(CallcardSettings.objects.filter(company=OuterRef("pk")).values("low_balance_minutes")[:1]),
        default,
    )
    cards = Card.objects.filter(company=OuterRef("pk")).order_by().values("company")

    def count(queryset):
        return Coalesce(Subquery(queryset.annotate(n=Count("pk")).values("n")[:1]), 0)

    figures = (
        Company.objects.filter(pk=company.pk)
        .annotate(threshold=threshold)
        .values(
            "threshold",
            made=count(cards),
            live=count(cards.filter(status__in=sorted(LIVE))),
            # With a threshold of 0 (never alert) the panel does not show this count.
            low=count(cards.filter(status__in=sorted(DIALABLE), balance_minutes__lte=OuterRef("threshold"))),
        )
        .get()
    )
    return {"visible": True, "cards": figures.pop("made"), **figures}


def callcard_settings_of(*, company: Company) -> CallcardSettings:
    """The company's call card settings; the defaults (unsaved) until it changes them."""
    return CallcardSettings.objects.filter(company=company).first() or CallcardSettings(company=company)
