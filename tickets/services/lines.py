"""What a company changes on its ticket lines: the settings of a line, its ticket counter, its
technicians (their hunt order and the one in charge, the seed's follow-me/CFU) and its SMS settings.

The server and the DID are the operator's (the admin). Secrets (the SMS gateway's, a technician's
SMS password) are write only: an empty value keeps the stored one, never shown again.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from accounts.models import Company
from tickets.models import SmsSettings, Technician, TicketHop, TicketLine

# What the portal may change of a line: never its company, server, number, route, counter or state.
LINE_SETTINGS = [
    "announcement_sound",
    "announcement_file",
    "confirm_digit",
    "confirm_seconds",
    "record",
    "ring_seconds",
    "wrap",
    "rounds",
    "message_template",
    "retention_days",
]


def ticket_line_update(*, line: TicketLine, next_ticket: int | None = None) -> TicketLine:
    """Save the line's settings as the company sets them; `next_ticket`, when given, restarts the
    numbering there (ticket_line_next_ticket_set). The counter is never written from a stale copy of
    the line: calls move it between the page being shown and being sent."""
    line.full_clean(exclude=["next_ticket"])
    with transaction.atomic():
        line.save(update_fields=LINE_SETTINGS)
        if next_ticket is not None:
            line.next_ticket = ticket_line_next_ticket_set(line_id=line.pk, next_ticket=next_ticket)
    return line


def ticket_line_next_ticket_set(*, line_id: int, next_ticket: int) -> int:
    """Restart the line's numbering at `next_ticket` (ticket_line_next_ticket_check), under the line's
    lock: the row lock waits for a hop taking a number to commit, so its ticket is seen."""
    with transaction.atomic():
        TicketLine.objects.select_for_update().get(pk=line_id)
        ticket_line_next_ticket_check(line_id=line_id, next_ticket=next_ticket)
        _counter_write(line_id, next_ticket)
    return next_ticket


def ticket_line_next_ticket_check(*, line_id: int, next_ticket: int) -> None:
    """ValidationError when `next_ticket` is out of range, or it or a number above it is already a
    ticket of the line: the numbers go up from there and would reach it (a ticket is one hop's)."""
    field = TicketLine._meta.get_field("next_ticket")
    try:
        field.run_validators(next_ticket)
    except ValidationError as error:
        raise ValidationError({"next_ticket": error.messages}) from error
    highest = _highest_ticket(line_id)
    if highest is not None and next_ticket <= highest:
        used = TicketHop.objects.filter(line_id=line_id, ticket=next_ticket).exists()
        why = f"ticket {next_ticket} is already used on this line" if used else (
            f"tickets up to {highest} are already used on this line and the numbers would reach them"
        )  # fmt: skip
        raise ValidationError({"next_ticket": f"Not {next_ticket}: {why}. Choose {highest + 1} or more."})


def _counter_write(line_id: int, next_ticket: int) -> None:
    TicketLine.objects.filter(pk=line_id).update(next_ticket=next_ticket)


def _highest_ticket(line_id: int) -> int | None:
    return TicketHop.objects.filter(line_id=line_id).aggregate(top=Max("ticket"))["top"]


def ticket_line_in_charge_set(*, line: TicketLine, technician: Technician | None) -> TicketLine:
    """Who is rung first (the seed's follow-me/CFU object): one of the line's active technicians, or
    nobody (the first of the list)."""
    if technician is not None:
        if technician.line_id != line.pk:
            raise ValidationError("Choose one of this line's technicians.")
        if not technician.active:
            raise ValidationError(f"{technician.name} is inactive: make them active first.")
    TicketLine.objects.filter(pk=line.pk).update(in_charge=technician)
    line.in_charge = technician
    return line


def technician_save(
    *, technician: Technician, sms_password: str | None = None, clear_sms_password: bool = False
) -> Technician:
    """Add a technician at the end of the hunt, or change one. The SMS password is written only
    when given (None keeps the stored one) or cleared on request."""
    if clear_sms_password:
        technician.sms_password = ""
    elif sms_password:
        technician.sms_password = sms_password
    technician.full_clean(exclude=["position"])
    with transaction.atomic():
        if technician.pk is None:
            TicketLine.objects.select_for_update().get(pk=technician.line_id)
            last = Technician.objects.filter(line_id=technician.line_id).aggregate(top=Max("position"))
            technician.position = 0 if last["top"] is None else last["top"] + 1
        technician.save()
    return technician


def technician_deactivate(*, technician: Technician) -> Technician:
    """Out of the hunt, kept in the log and the list (make them active again by editing them)."""
    Technician.objects.filter(pk=technician.pk).update(active=False)
    technician.active = False
    return technician


def technician_move(*, technician: Technician, offset: int) -> list[Technician]:
    """Move a technician up (-1) or down (+1) in the hunt order; the line's positions are renumbered
    0, 1, 2... under the line's lock, so two moves at once never leave two technicians on one place."""
    if offset not in (-1, 1):
        raise ValidationError("Move by one place, up or down.")
    with transaction.atomic():
        TicketLine.objects.select_for_update().get(pk=technician.line_id)
        ordered = list(Technician.objects.filter(line_id=technician.line_id).order_by("position", "id"))
        index = next(n for n, t in enumerate(ordered) if t.pk == technician.pk)
        other = index + offset
        if 0 <= other < len(ordered):
            ordered[index], ordered[other] = ordered[other], ordered[index]
        for position, each in enumerate(ordered):
            if each.position != position:
                each.position = position
                Technician.objects.filter(pk=each.pk).update(position=position)
    return ordered


def sms_settings_save(*, settings: SmsSettings, company: Company, secret: str | None = None) -> SmsSettings:
    """The company's SMS gateway; the secret is written only when given (None keeps the stored one)."""
    settings.company = company
    if secret:
        settings.secret = secret
    if settings.provider == SmsSettings.Provider.HTTP and not settings.url:
        raise ValidationError({"url": "The HTTP gateway needs its send URL."})
    settings.full_clean()
    with transaction.atomic():
        stored = SmsSettings.objects.select_for_update().filter(company=company).first()
        if stored is not None:
            settings.pk = stored.pk
            if not secret:
                settings.secret = stored.secret
        settings.save()
    return settings


def technicians_order(*, line_id: int, technician_ids: list[int]) -> list[Technician]:
    """The hunt order set in one go (the API's): every technician of the line, each once, first rung
    first; positions renumbered 0, 1, 2... under the line's lock, as technician_move does."""
    with transaction.atomic():
        line = TicketLine.objects.select_for_update().get(pk=line_id)
        technicians = {t.pk: t for t in Technician.objects.filter(line=line)}
        if len(technician_ids) != len(set(technician_ids)) or set(technician_ids) != set(technicians):
            raise ValidationError({"technicians": ["Every technician of the line, each once."]})
        for position, pk in enumerate(technician_ids):
            technicians[pk].position = position
        Technician.objects.bulk_update(technicians.values(), ["position"])
    return [technicians[pk] for pk in technician_ids]
