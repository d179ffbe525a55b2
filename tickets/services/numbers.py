"""Ticket numbers: one per hop, from the line's counter, never shared and never skipped.

The counter is moved by a conditional UPDATE in the transaction that writes the hop: the UPDATE
takes the line's row lock (PostgreSQL) or the database's write lock (SQLite) before it reads, so
concurrent calls queue on it and each reads its own number; a hop that is not written rolls the
counter back with it, leaving no gap.
"""

from django.db import transaction
from django.db.models import F

from tickets.models import TicketLine


def ticket_number_allocate(*, line_id: int) -> int:
    """The line's next ticket number, taken; call it in the transaction that writes the hop."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("a ticket number is taken in the transaction that writes its hop")
    if TicketLine.objects.filter(pk=line_id).update(next_ticket=F("next_ticket") + 1) != 1:
        raise TicketLine.DoesNotExist(f"no ticket line {line_id}")
    return TicketLine.objects.values_list("next_ticket", flat=True).get(pk=line_id) - 1
