"""What a company changes on its ticket lines: the call settings, the technician in charge (the
seed's follow-me/CFU), the technicians and their hunt order.

The line's row is locked for each change: a hop taking a ticket number moves the same row
(tickets.services.numbers), so a restart of the numbering is checked against the tickets really
given, never against a read that a concurrent hop has made stale.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from tickets.models import Technician, TicketLine
from tickets.services.messages import template_check

# What a company may change on its line (the portal's form and the API); the number, the server,
# the route and the announcement are the platform operator's.
LINE_SETTINGS = (
    "confirm_digit",
    "confirm_seconds",
    "record",
    "ring_seconds",
    "wrap",
    "rounds",
    "next_ticket",
    "message_template",
    "retention_days",
)
TECHNICIAN_FIELDS = (
    "name",
    "position",
    "internal",
    "mobile",
    "sms_number",
    "im_address",
    "sms_username",
    "sms_password",
    "active",
)


def ticket_line_update(*, line_id: int, changes: dict) -> TicketLine:
    """A line's settings changed: the template must parse, and the next ticket must be above every
    ticket the line has given (a number already used would be given twice)."""
    unknown = set(changes) - set(LINE_SETTINGS)
    if unknown:
        raise ValueError(f"not a setting a company changes: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        line = TicketLine.objects.select_for_update().get(pk=line_id)
        if "message_template" in changes:
            try:
                template_check(changes["message_template"])
            except ValueError as exc:
                raise ValidationError({"message_template": [str(exc)]}) from None
        if "next_ticket" in changes:
            highest = line.hops.aggregate(highest=Max("ticket"))["highest"]
            if highest is not None and changes["next_ticket"] <= highest:
                raise ValidationError(
                    {"next_ticket": [f"Tickets up to {highest} were given already: a number above it."]}
                )
        for name, value in changes.items():
            setattr(line, name, value)
        line.full_clean(exclude=["company", "server", "in_charge", "announcement_file"])
        line.save(update_fields=list(changes))
    return line


def ticket_line_in_charge_set(*, line_id: int, technician_id: int | None) -> TicketLine:
    """The technician rung first (the seed's CFU on the dummy object), or none: the first of the
    list. One of the line's own technicians; an inactive one is taken, the hunt skips it."""
    with transaction.atomic():
        line = TicketLine.objects.select_for_update().get(pk=line_id)
        if technician_id is not None and not line.technicians.filter(pk=technician_id).exists():
            raise ValidationError({"in_charge": ["Not a technician of this line."]})
        line.in_charge_id = technician_id
        line.save(update_fields=["in_charge"])
    return line


def technician_create(*, line: TicketLine, fields: dict) -> Technician:
    """A technician added to a line; without a position, after the last one."""
    with transaction.atomic():
        TicketLine.objects.select_for_update().filter(pk=line.pk).first()
        if fields.get("position") is None:
            last = line.technicians.aggregate(last=Max("position"))["last"]
            fields = {**fields, "position": 1 if last is None else last + 1}
        technician = Technician(line=line, **fields)
        technician.full_clean()
        technician.save()
    return technician


def technician_update(*, technician: Technician, changes: dict) -> Technician:
    unknown = set(changes) - set(TECHNICIAN_FIELDS)
    if unknown:
        raise ValueError(f"not a technician's field: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(technician, name, value)
    technician.full_clean()
    technician.save(update_fields=list(changes))
    return technician


def technician_delete(*, technician: Technician) -> None:
    """A technician removed; the log keeps the name (TicketHop.technician_name), and a line that had
    it in charge starts its hunts at the first of the list again."""
    technician.delete()


def technicians_order(*, line_id: int, technician_ids: list[int]) -> list[Technician]:
    """The hunt order set in one go: the line's technicians, each once, first rung first."""
    with transaction.atomic():
        line = TicketLine.objects.select_for_update().get(pk=line_id)
        technicians = {t.pk: t for t in line.technicians.all()}
        if len(technician_ids) != len(set(technician_ids)) or set(technician_ids) != set(technicians):
            raise ValidationError({"technicians": ["Every technician of the line, each once."]})
        for position, pk in enumerate(technician_ids, start=1):
            technicians[pk].position = position
        Technician.objects.bulk_update(technicians.values(), ["position"])
    return [technicians[pk] for pk in technician_ids]
