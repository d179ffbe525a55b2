import datetime as dt
import math
import re

from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from telephony.models import CallRecord, PbxServer, PushToken, WebhookDelivery

# What people type between digits ("+33 1 23-45", "(555) 1001"), which caller IDs mostly lack.
NUMBER_SEPARATORS = re.compile(r"[\s\-().]")


def pbx_servers_enabled(*, names: list[str] | None = None) -> list[PbxServer]:
    servers = PbxServer.objects.filter(enabled=True)
    if names is not None:
        servers = servers.filter(name__in=names)
    return list(servers)


def pbx_server_is_up(server: PbxServer) -> bool:
    """Connected, by a pbx process whose lease still runs: a dead process cannot leave a server looking up."""
    return (
        server.state == PbxServer.State.CONNECTED
        and server.lease_expires_at is not None
        and server.lease_expires_at > timezone.now()
    )


# A call longer than this is taken for one whose end was lost.
LONGEST_PLAUSIBLE_CALL = dt.timedelta(hours=4)


def call_records_stale_open(*, server: PbxServer) -> int:
    """Open records older than the longest plausible call: ends the platform missed."""
    return (
        CallRecord.objects.filter(server=server, started_at__lt=timezone.now() - LONGEST_PLAUSIBLE_CALL)
        .exclude(state=CallRecord.State.ENDED)
        .count()
    )


def call_records_for_company(
    *,
    company,
    disposition: str = "",
    start: dt.date | None = None,
    end: dt.date | None = None,
    number: str = "",
):
    """The company's call records, newest first; dates are days in the active (the company's) time zone.

    `number` matches part of the caller or the callee, as typed or without
    separators, so "1001" and "555-1001" both find 5551001.
    """
    records = CallRecord.objects.filter(company=company).order_by("-started_at", "-id")
    if disposition:
        records = records.filter(disposition=disposition)
    if start:
        records = records.filter(started_at__date__gte=start)
    if end:
        records = records.filter(started_at__date__lte=end)
    if number:
        match = Q(caller__contains=number) | Q(callee__contains=number)
        if digits := NUMBER_SEPARATORS.sub("", number):
            match |= Q(caller__contains=digits) | Q(callee__contains=digits)
        records = records.filter(match)
    return records


def calls_for_company(
    *,
    company,
    disposition: str = "",
    start: dt.date | None = None,
    end: dt.date | None = None,
    number: str = "",
):
    """The company's calls, newest first, one row each: the first leg of each Linkedid (the legs it
    dialed, the agents rung for it ... are listed on its page), with `call_answered` when any of its
    legs was answered (the call's outcome) and `leg_count`. `disposition` is the call's outcome;
    `number` matches any of its legs; dates are its first leg's."""
    legs = CallRecord.objects.filter(company=company)
    same_call = legs.filter(linkedid=OuterRef("linkedid")).exclude(linkedid="")
    calls = (
        legs.filter(Q(linkedid="") | ~Exists(same_call.filter(pk__lt=OuterRef("pk"))))
        .annotate(
            call_answered=Q(disposition=CallRecord.Disposition.ANSWERED)
            | Exists(same_call.filter(disposition=CallRecord.Disposition.ANSWERED)),
            leg_count=Coalesce(
                Subquery(same_call.order_by().values("linkedid").annotate(n=Count("pk")).values("n")[:1]), 1
            ),
        )
        .order_by("-started_at", "-id")
    )
    if disposition == CallRecord.Disposition.ANSWERED:
        calls = calls.filter(call_answered=True)
    elif disposition:
        calls = calls.filter(disposition=disposition, call_answered=False)
    if start:
        calls = calls.filter(started_at__date__gte=start)
    if end:
        calls = calls.filter(started_at__date__lte=end)
    if number:
        match = call_records_for_company(company=company, number=number)
        calls = calls.filter(
            Q(pk__in=match.values("pk")) | Q(linkedid__in=match.exclude(linkedid="").values("linkedid"))
        )
    return calls


def call_legs(*, record: CallRecord):
    """Every leg of the call `record` is part of (its Linkedid), of the same company, in order."""
    if not record.linkedid:
        return CallRecord.objects.filter(pk=record.pk)
    return CallRecord.objects.filter(company_id=record.company_id, linkedid=record.linkedid).order_by(
        "started_at", "id"
    )


def call_figures_for_company(*, company, now: dt.datetime | None = None) -> dict:
    """Today's and this month's calls, in the company's time zone, in one query.

    A call is one Linkedid: every leg of it (the legs it dialed, the agent's leg Asterisk joined to
    it in a bridge, the halves of a Local channel) counts once, on the day its first leg started,
    and is answered when any of its legs was. Billed minutes are the answered seconds of the legs no
    other leg dialed (each is a line the platform held), summed, rounded up to the minute.
    """
    local_now = timezone.localtime(now or timezone.now(), company.tzinfo)
    day_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    answered = Q(disposition=CallRecord.Disposition.ANSWERED)
    calls = (
        CallRecord.objects.filter(company=company, started_at__gte=month_start)
        .annotate(call=Coalesce(NullIf("linkedid", Value("")), "uniqueid"))
        .values("call")
        .annotate(
            first_start=Min("started_at"),
            answered=Max(Value(1), filter=answered, default=0),
            billsec=Sum("billsec", filter=Q(parent__isnull=True), default=0),
        )
        .order_by()
    )
    today = Q(first_start__gte=day_start)
    figures = calls.aggregate(
        calls_today=Count("call", filter=today),
        answered_today=Count("call", filter=today & Q(answered=1)),
        billsec_today=Sum("billsec", filter=today, default=0),
        calls_month=Count("call"),
        answered_month=Count("call", filter=Q(answered=1)),
        billsec_month=Sum("billsec", default=0),
    )
    for period in ("today", "month"):
        count = figures[f"calls_{period}"]
        figures[f"answered_rate_{period}"] = (
            round(100 * figures[f"answered_{period}"] / count) if count else None
        )
        figures[f"billed_minutes_{period}"] = math.ceil(figures.pop(f"billsec_{period}") / 60)
    figures["day"] = day_start.date()
    return figures


def home_panel(*, company, user) -> dict:
    """The portal home page's telephony panel: the company's call figures."""
    return {"figures": call_figures_for_company(company=company)}


def webhook_deliveries_for_company(*, company):
    return WebhookDelivery.objects.filter(company=company).order_by("-created_at", "-id")


def push_tokens_for_company(*, company):
    return PushToken.objects.filter(company=company).order_by("-active", "-created_at", "-id")


def webhook_secret_hint(*, company) -> str:
    """Enough of the signing secret to tell which one a receiver holds, never enough to sign."""
    return f"{company.webhook_secret[:4]}…"
