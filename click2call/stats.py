"""Click2call statistics: a company's call requests over a period, in its time zone, and its legs.

A period of dates runs from the first day's midnight to the midnight after the last, in the
company's time zone, and holds the requests *made* in it (their outcome is as it stands now). The
legs are those of these requests' attempts: telephony's call records of app "click2call" whose
app_ref is "attempt:<id>". Which party a leg rang follows click2call.services.dialing: the
originated leg (no parent) is the attempt's first party, the legs it dialed (its children, one per
operator rung) are the other party.

Time to answer is a leg's ringing (duration - billsec of an answered, ended leg), talk time its
billsec. Every figure is a fixed number of aggregate queries whatever the number of requests (the
tests pin them); Python only walks the days or hours of a chart.
"""

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone
from import_export import fields as export_fields

from click2call.models import CallAttempt, CallRequest, Campaign
from config.exports import ExportResource
from config.periods import EARLIEST, LATEST, MAX_PERIOD_DAYS, day_bounds
from telephony.models import CallRecord

Status = CallRequest.Status
VISITOR, COMPANY = Campaign.FirstParty.VISITOR, Campaign.FirstParty.COMPANY
DIRECTIONS_SHOWN = 20
FAILED = (Status.FAILED_USER, Status.FAILED_COMPANY)
OUTCOME_WORDS = [
    ("completed", "COMPLETED", Status.COMPLETED),
    ("failed_user", "FAILED CALLING TO USER", Status.FAILED_USER),
    ("failed_company", "FAILED CALLING TO COMPANY", Status.FAILED_COMPANY),
    ("open", "Still open", None),
]


def period_problem(start: dt.date, end: dt.date) -> str | None:
    """What is wrong with a period asked for, in words for a person; None when it can be shown."""
    for day in (start, end):
        if not EARLIEST <= day <= LATEST:
            return f"A date from {EARLIEST} to {LATEST}."
    if end < start:
        return "The period ends before it starts."
    if (end - start).days >= MAX_PERIOD_DAYS:
        return f"A period of at most {MAX_PERIOD_DAYS} days."
    return None


def period_of(kind: str, day: dt.date) -> tuple[dt.date, dt.date]:
    """The day, the week (Monday to Sunday) or the calendar month holding `day`."""
    if kind == "week":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=6)
    if kind == "month":
        start = day.replace(day=1)
        following = (start + dt.timedelta(days=32)).replace(day=1)
        return start, following - dt.timedelta(days=1)
    return day, day


def previous_period(
    start: dt.date, end: dt.date, kind: str = "custom", today: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """The period just before: the previous month for a month, else as many days just before. A
    period still under way (`today` in it) is compared like for like: this month so far with the
    same days of the previous month, this week so far with the same days of the last."""
    if kind == "month":
        before = period_of("month", start - dt.timedelta(days=1))
    else:
        days = (end - start).days + 1
        before = start - dt.timedelta(days=days), start - dt.timedelta(days=1)
    if today is not None and start <= today < end:
        return before[0], min(before[1], before[0] + (today - start))
    return before


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _average(total: int, count: int) -> float | None:
    return round(total / count, 1) if count else None


@dataclass
class LegFigures:
    """The legs that rang one party (the visitor, or the company's operators)."""

    party: str
    legs: int = 0
    answered: int = 0
    ring_seconds: int = 0  # of the answered, ended legs
    timed: int = 0  # answered, ended legs
    talk_seconds: int = 0
    longest_talk: int = 0

    @property
    def answer_rate(self) -> float | None:
        return _rate(self.answered, self.legs)

    @property
    def average_time_to_answer(self) -> float | None:
        return _average(self.ring_seconds, self.timed)

    @property
    def average_talk(self) -> float | None:
        return _average(self.talk_seconds, self.timed)

    def as_dict(self) -> dict:
        return {
            "legs": self.legs,
            "answered": self.answered,
            "answer_rate": self.answer_rate,
            "average_time_to_answer": self.average_time_to_answer,
            "talk_seconds": self.talk_seconds,
            "average_talk": self.average_talk,
            "longest_talk": self.longest_talk,
        }


@dataclass(kw_only=True)
class RequestCounts:
    """The requests of a period, a day, a direction or a campaign, by how they ended."""

    requests: int = 0
    completed: int = 0
    failed_user: int = 0
    failed_company: int = 0
    open: int = 0

    @property
    def completion_rate(self) -> float | None:
        return _rate(self.completed, self.requests)


@dataclass
class PeriodFigures(RequestCounts):
    start: dt.date
    end: dt.date
    visitor: LegFigures = field(default_factory=lambda: LegFigures(VISITOR))
    company: LegFigures = field(default_factory=lambda: LegFigures(COMPANY))

    # The figures compared between two periods, and written to the CSV and the API, in this order.
    def flat(self) -> list[tuple[str, str, int | float | None]]:
        rows = [
            ("requests", "Requests", self.requests),
            ("completed", "COMPLETED", self.completed),
            ("failed_user", "FAILED CALLING TO USER", self.failed_user),
            ("failed_company", "FAILED CALLING TO COMPANY", self.failed_company),
            ("open", "Still open", self.open),
            ("completion_rate", "Completed (%)", self.completion_rate),
        ]
        for party, legs in ((VISITOR, self.visitor), (COMPANY, self.company)):
            words = "Visitor" if party == VISITOR else "Company"
            rows += [
                (f"{party}_legs", f"{words} legs", legs.legs),
                (f"{party}_answered", f"{words} legs answered", legs.answered),
                (f"{party}_answer_rate", f"{words} answer rate (%)", legs.answer_rate),
                (f"{party}_time_to_answer", f"{words} time to answer (s)", legs.average_time_to_answer),
                (f"{party}_talk_seconds", f"{words} talk time (s)", legs.talk_seconds),
                (f"{party}_average_talk", f"{words} average talk (s)", legs.average_talk),
            ]
        return rows

    def as_dict(self) -> dict:
        return {
            "from": self.start,
            "to": self.end,
            "requests": self.requests,
            "completed": self.completed,
            "failed_user": self.failed_user,
            "failed_company": self.failed_company,
            "open": self.open,
            "completion_rate": self.completion_rate,
            "legs": {VISITOR: self.visitor.as_dict(), COMPANY: self.company.as_dict()},
        }


def _requests(*, company, start: dt.date, end: dt.date, campaign: Campaign | None):
    since, until = day_bounds(company, start, end)
    requests = CallRequest.objects.filter(company=company, created_at__gte=since, created_at__lt=until)
    return requests.filter(campaign=campaign) if campaign is not None else requests


STATUS_COUNTS = {
    "requests": Count("pk"),
    "completed": Count("pk", filter=Q(status=Status.COMPLETED)),
    "failed_user": Count("pk", filter=Q(status=Status.FAILED_USER)),
    "failed_company": Count("pk", filter=Q(status=Status.FAILED_COMPANY)),
    "open": Count("pk", filter=Q(status__in=CallRequest.OPEN)),
}

# One row per party. The join runs from the period's requests (index on company, created_at) to
# their attempts and, by app_ref, to the legs (index on app, app_ref): index lookups, never a scan
# of every call record. A boolean compared to a boolean is standard SQL (SQLite and PostgreSQL).
# PostgreSQL's planner, at its default random_page_cost, scans every attempt of every company
# into a hash rather than look up the period's (a month of a company with a million requests:
# 0.9 s instead of 0.3): a lateral subquery that cannot be pulled up (OFFSET 0) keeps the lookups.
_ATTEMPTS_JOIN = {
    "postgresql": "JOIN LATERAL (SELECT a.id, a.first_party FROM {attempt} a WHERE a.request_id = req.id "
    "OFFSET 0) att ON TRUE",
    "default": "JOIN {attempt} att ON att.request_id = req.id",
}
_LEGS_SQL = """
SELECT CASE WHEN (rec.parent_id IS NULL) = (att.first_party = %s) THEN %s ELSE %s END AS party,
       COUNT(*),
       SUM(CASE WHEN rec.answered_at IS NOT NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN rec.answered_at IS NOT NULL AND rec.state = %s
                THEN rec.duration - rec.billsec ELSE 0 END),
       SUM(CASE WHEN rec.answered_at IS NOT NULL AND rec.state = %s THEN 1 ELSE 0 END),
       SUM(rec.billsec),
       MAX(rec.billsec)
FROM {request} req
{attempts}
JOIN {record} rec ON rec.app = %s AND rec.app_ref = ('attempt:' || CAST(att.id AS TEXT))
WHERE req.company_id = %s AND req.created_at >= %s AND req.created_at < %s {campaign}
GROUP BY 1
"""


def _legs(*, company, start: dt.date, end: dt.date, campaign: Campaign | None) -> dict[str, LegFigures]:
    since, until = day_bounds(company, start, end)
    ended = CallRecord.State.ENDED
    params = [VISITOR, VISITOR, COMPANY, ended, ended, "click2call", company.pk, since, until]
    if campaign is not None:
        params.append(campaign.pk)
    attempts = _ATTEMPTS_JOIN.get(connection.vendor, _ATTEMPTS_JOIN["default"])
    sql = _LEGS_SQL.format(
        request=CallRequest._meta.db_table,
        attempts=attempts.format(attempt=CallAttempt._meta.db_table),
        record=CallRecord._meta.db_table,
        campaign="AND req.campaign_id = %s" if campaign is not None else "",
    )
    figures = {VISITOR: LegFigures(VISITOR), COMPANY: LegFigures(COMPANY)}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for party, legs, answered, ring, timed, talk, longest in cursor.fetchall():
            sums = (answered, ring, timed, talk, longest)
            figures[party] = LegFigures(party, legs, *(value or 0 for value in sums))
    return figures


def period_figures(
    *, company, start: dt.date, end: dt.date, campaign: Campaign | None = None, points: list | None = None
) -> PeriodFigures:
    """The requests made from `start` to `end` (both included) and their legs: two queries, or one
    when the period's `series` is given (its days or hours add up to the period's counts)."""
    if points is None:
        counts = _requests(company=company, start=start, end=end, campaign=campaign).aggregate(
            **STATUS_COUNTS
        )
    else:
        counts = {key: sum(getattr(point, key) for point in points) for key in STATUS_COUNTS}
    legs = _legs(company=company, start=start, end=end, campaign=campaign)
    return PeriodFigures(start, end, **counts, visitor=legs[VISITOR], company=legs[COMPANY])


@dataclass
class Delta:
    key: str
    label: str
    this: int | float | None
    other: int | float | None

    @property
    def absolute(self) -> int | float | None:
        if self.this is None or self.other is None:
            return None
        difference = self.this - self.other
        return round(difference, 1) if isinstance(difference, float) else difference

    @property
    def relative(self) -> float | None:
        """Percent of change from the other period; None from 0 (no ratio to speak of)."""
        if self.absolute is None or not self.other:
            return None
        return round(100 * self.absolute / self.other, 1)

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "this": self.this,
            "other": self.other,
            "absolute": self.absolute,
            "relative": self.relative,
        }


def comparison(this: PeriodFigures, other: PeriodFigures) -> list[Delta]:
    return [
        Delta(key, label, value, other_value)
        for (key, label, value), (_, _, other_value) in zip(this.flat(), other.flat(), strict=True)
    ]


@dataclass
class Point(RequestCounts):
    at: dt.datetime | dt.date

    @property
    def failed(self) -> int:
        return self.failed_user + self.failed_company


def series(*, company, start: dt.date, end: dt.date, campaign: Campaign | None = None) -> list[Point]:
    """Requests per day, or per hour for one day, every bucket present (empty ones at 0): one query."""
    tz = company.tzinfo
    hourly = start == end
    bucket = TruncHour("created_at", tzinfo=tz) if hourly else TruncDate("created_at", tzinfo=tz)
    rows = (
        _requests(company=company, start=start, end=end, campaign=campaign)
        .annotate(bucket=bucket)
        .values("bucket")
        .annotate(**STATUS_COUNTS)
        .order_by("bucket")
    )
    found = {}
    for row in rows:
        at = row.pop("bucket")
        if hourly:
            # SQLite gives naive datetimes in the zone asked for, PostgreSQL aware ones.
            at = at.astimezone(tz) if timezone.is_aware(at) else at.replace(tzinfo=tz)
            at = at.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        found[at] = row
    points = []
    if hourly:
        # A DST day has 23 or 25 hours: walk its real hours (UTC steps), named by the wall clock.
        since, until = day_bounds(company, start, end)
        at = since.astimezone(dt.UTC)
        while at < until:
            wall = at.astimezone(tz).replace(tzinfo=None)
            row = found.pop(wall, None) or {}
            points.append(Point(wall, **{key: row.get(key, 0) for key in STATUS_COUNTS}))
            at += dt.timedelta(hours=1)
    else:
        day = start
        while day <= end:
            row = found.get(day) or {}
            points.append(Point(day, **{key: row.get(key, 0) for key in STATUS_COUNTS}))
            day += dt.timedelta(days=1)
    return points


@dataclass
class DirectionFigures(RequestCounts):
    country: str
    carrier: str


def directions(
    *, company, start: dt.date, end: dt.date, campaign: Campaign | None = None, limit: int = DIRECTIONS_SHOWN
) -> list[DirectionFigures]:
    """Requests by country and mobile operator (carrier), the most requested first: one query."""
    rows = (
        _requests(company=company, start=start, end=end, campaign=campaign)
        .values("country", "carrier")
        .annotate(**STATUS_COUNTS)
        .order_by("-requests", "country", "carrier")[:limit]
    )
    return [DirectionFigures(**row) for row in rows]


@dataclass
class CampaignFigures(RequestCounts):
    campaign_id: int
    name: str


def campaigns(*, company, start: dt.date, end: dt.date) -> list[CampaignFigures]:
    """Requests per campaign over the period, the most requested first: one query."""
    rows = (
        _requests(company=company, start=start, end=end, campaign=None)
        .values("campaign_id", "campaign__name")
        .annotate(**STATUS_COUNTS)
        .order_by("-requests", "campaign__name")
    )
    return [CampaignFigures(name=row.pop("campaign__name"), **row) for row in rows]


@dataclass
class LiveFigures:
    dialing: int
    retries_waiting: int
    failed_waiting: int
    next_retry_at: dt.datetime | None
    oldest_failed_at: dt.datetime | None

    def as_dict(self) -> dict:
        return {
            "in_progress": self.dialing,
            "retries_waiting": self.retries_waiting,
            "failed_waiting": self.failed_waiting,
            "next_retry_at": self.next_retry_at,
            "oldest_failed_at": self.oldest_failed_at,
        }


def live(*, company, campaign: Campaign | None = None) -> LiveFigures:
    """Now: requests being dialed, waiting for their next automatic try, and failed ones waiting
    for the company's call back (every failed request is: a call back that connects completes it).
    One query, on the index of (company, status)."""
    requests = CallRequest.objects.filter(company=company, status__in=[*CallRequest.OPEN, *FAILED])
    if campaign is not None:
        requests = requests.filter(campaign=campaign)
    retry = Q(status=Status.PENDING, next_try_at__isnull=False)
    row = requests.aggregate(
        dialing=Count("pk", filter=Q(status=Status.DIALING)),
        retries_waiting=Count("pk", filter=retry),
        failed_waiting=Count("pk", filter=Q(status__in=FAILED)),
        next_retry_at=Min("next_try_at", filter=retry),
        oldest_failed_at=Min("finished_at", filter=Q(status__in=FAILED)),
    )
    return LiveFigures(**row)


# The CSV: every figure of the page, one a row, with the compared period's beside it.


@dataclass
class StatsRow:
    section: str
    item: str
    measure: str
    value: int | float | None
    compared: int | float | None = None
    delta: int | float | None = None
    delta_percent: float | None = None


def stats_rows(
    *,
    figures: PeriodFigures,
    deltas: list[Delta] | None,
    points: list[Point],
    directions: list[DirectionFigures],
    campaigns: list[CampaignFigures],
) -> list[StatsRow]:
    period = f"{figures.start}..{figures.end}"
    rows = []
    if deltas is not None:
        for delta in deltas:
            rows.append(
                StatsRow(
                    "figures", period, delta.label, delta.this, delta.other, delta.absolute, delta.relative
                )
            )
    else:
        rows += [StatsRow("figures", period, label, value) for _, label, value in figures.flat()]
    counted = [
        ("requests", "Requests"),
        ("completed", "COMPLETED"),
        ("failed_user", "FAILED CALLING TO USER"),
    ]
    counted.append(("failed_company", "FAILED CALLING TO COMPANY"))
    for row in campaigns:
        rows += [StatsRow("campaign", row.name, label, getattr(row, key)) for key, label in counted]
    for row in directions:
        item = f"{row.country or '?'} {row.carrier or '?'}"
        rows += [StatsRow("direction", item, label, getattr(row, key)) for key, label in counted]
    for point in points:
        item = point.at.isoformat()
        rows += [StatsRow("series", item, label, getattr(point, key)) for key, label in counted]
    return rows


class StatsResource(ExportResource):
    section = export_fields.Field(attribute="section", column_name="section")
    item = export_fields.Field(attribute="item", column_name="item")
    measure = export_fields.Field(attribute="measure", column_name="measure")
    value = export_fields.Field(attribute="value", column_name="value")
    compared = export_fields.Field(attribute="compared", column_name="compared period")
    delta = export_fields.Field(attribute="delta", column_name="delta")
    delta_percent = export_fields.Field(attribute="delta_percent", column_name="delta %")

    class Meta:
        model = CallRequest
        fields = ["section", "item", "measure", "value", "compared", "delta", "delta_percent"]
        export_order = fields
