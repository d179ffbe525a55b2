"""Ticket lines' reads for the portal: the lines, a line's technicians and the hunt they make, the
company's SMS settings, the log (one row per hop, the seed's line) and a call's page.

Every read is scoped to one company and is a fixed number of queries whatever the number of rows (the
tests pin them). Days are the company's: a period runs from the first day's midnight to the midnight
after the last day, in the company's time zone.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet

from accounts.models import Company
from config.periods import day_bounds
from tickets.models import SmsSettings, Technician, TicketCall, TicketHop, TicketLine, TicketMessage

LIVE_CALL_STATES = (TicketCall.State.ANNOUNCING, TicketCall.State.HUNTING)


def lines_for_company(*, company: Company) -> QuerySet:
    """The company's lines by name, with their technician in charge and how many are active."""
    return (
        TicketLine.objects.filter(company=company)
        .select_related("in_charge")
        .annotate(
            technician_count=Count("technicians", distinct=True),
            active_technician_count=Count("technicians", filter=Q(technicians__active=True), distinct=True),
        )
        .order_by("name", "id")
    )


def line_for_company(*, company: Company, pk) -> TicketLine | None:
    return TicketLine.objects.filter(company=company, pk=pk).select_related("in_charge").first()


def technicians_of_line(*, line: TicketLine) -> list[Technician]:
    return list(Technician.objects.filter(line=line).order_by("position", "id"))


def technician_of_company(*, company: Company, pk) -> Technician | None:
    return Technician.objects.filter(line__company=company, pk=pk).select_related("line").first()


@dataclass(frozen=True)
class HuntOrder:
    """Whom a call rings, in order, for one pass through the list; `rounds` passes when it wraps."""

    technicians: list[Technician]
    wraps: bool
    rounds: int
    in_charge_inactive: bool


def hunt_order(*, line: TicketLine, technicians: list[Technician]) -> HuntOrder:
    """The active technicians from the one in charge (the first of the list when none is) to the end
    of the list, then, when the line wraps, on from the first up to the one before the one in charge.
    An inactive technician in charge still says where the hunt starts: with the next active one."""
    ordered = sorted(technicians, key=lambda t: (t.position, t.pk))
    start = next((n for n, t in enumerate(ordered) if t.pk == line.in_charge_id), 0)
    tail, head = ordered[start:], ordered[:start]
    passing = tail + head if line.wrap else tail
    in_charge = ordered[start] if ordered and line.in_charge_id else None
    return HuntOrder(
        technicians=[t for t in passing if t.active],
        wraps=line.wrap,
        rounds=line.rounds if line.wrap else 1,
        in_charge_inactive=in_charge is not None and not in_charge.active,
    )


def sms_settings_of(*, company: Company) -> SmsSettings:
    """The company's SMS settings; the defaults (unsaved: no SMS is sent) until it saves them."""
    return SmsSettings.objects.filter(company=company).first() or SmsSettings(
        company=company, provider=SmsSettings.Provider.NONE
    )


def _messages():
    return Prefetch("call__messages", queryset=TicketMessage.objects.order_by("channel"))


def hops_for_company(
    *,
    company: Company,
    line: TicketLine | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    technician: Technician | None = None,
    answered: bool | None = None,
    caller: str = "",
) -> QuerySet:
    """The company's hops, newest first, each with its call and the call's messages: those started
    from `start`'s midnight to the midnight after `end` (the company's days), on `line`, ringing
    `technician`, answered or not, of calls whose caller contains `caller`."""
    hops = TicketHop.objects.filter(line__company=company)
    if line is not None:
        hops = hops.filter(line=line)
    if start:
        hops = hops.filter(started_at__gte=day_bounds(company, start, start)[0])
    if end:
        hops = hops.filter(started_at__lt=day_bounds(company, end, end)[1])
    if technician is not None:
        hops = hops.filter(technician=technician)
    if answered is not None:
        hops = hops.filter(answered=answered)
    if caller:
        hops = hops.filter(call__caller__contains=caller)
    return (
        hops.select_related("call", "line")
        .prefetch_related(_messages())
        .order_by("-started_at", "-ticket", "-id")
    )


def call_for_company(*, company: Company, pk) -> TicketCall | None:
    return (
        TicketCall.objects.filter(line__company=company, pk=pk).select_related("line", "answered_by").first()
    )


@dataclass(frozen=True)
class CallPage:
    hops: list[TicketHop]
    messages: list[TicketMessage]


def call_page(*, call: TicketCall) -> CallPage:
    """A call's hops in the order they rang, and the messages sent for it."""
    return CallPage(
        hops=list(call.hops.order_by("sequence", "id")),
        messages=list(call.messages.select_related("hop").order_by("channel", "id")),
    )


def has_live_calls(*, hops) -> bool:
    """Whether a call on the page is still going on (the page then follows it without a reload)."""
    return any(hop.call.state in LIVE_CALL_STATES for hop in hops)
