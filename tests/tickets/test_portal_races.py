"""The next ticket set from the portal while a call takes a number: never a number used twice."""

import pytest
from django.db import transaction

from tests.races import Rival
from tests.tickets.factories import TechnicianFactory, TicketCallFactory, TicketHopFactory, TicketLineFactory
from tickets.models import TicketHop, TicketLine
from tickets.services import lines
from tickets.services.numbers import ticket_number_allocate

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_hop_taking_a_number_during_a_restart_never_shares_it(monkeypatch):
    line = TicketLineFactory()
    tech = TechnicianFactory(line=line)
    call = TicketCallFactory(line=line)
    for sequence in (1, 2, 3):
        TicketHopFactory(call=call, technician=tech, sequence=sequence)  # tickets 1, 2, 3
    TicketLine.objects.filter(pk=line.pk).update(next_ticket=10)

    def a_hop():
        with transaction.atomic():
            ticket = ticket_number_allocate(line_id=line.pk)
            return TicketHopFactory(call=call, technician=tech, sequence=4, ticket=ticket).ticket

    rival = Rival(monkeypatch, lines, "_counter_write", a_hop)  # between the check and the write
    # Back to 4 from 10: allowed, 4 to 9 were never used; the hop waits for the line's lock and takes 4.
    lines.ticket_line_next_ticket_set(line_id=line.pk, next_ticket=4)
    rival.done()
    assert rival.error is None
    line.refresh_from_db()
    used = set(TicketHop.objects.filter(line=line).values_list("ticket", flat=True))
    assert line.next_ticket > max(used), (line.next_ticket, sorted(used))
    assert sorted(used) == [1, 2, 3, 4] and line.next_ticket == 5
