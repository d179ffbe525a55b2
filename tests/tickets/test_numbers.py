"""Ticket numbers under concurrency: 100 calls, each in its own thread and transaction, take a number
and write their hop at once; the numbers are contiguous from the line's next ticket, none repeated,
and a hop rolled back gives its number back (no gap). On the test database (SQLite locally,
PostgreSQL in CI)."""

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.tickets.factories import TicketCallFactory, TicketLineFactory
from tickets.models import TicketHop, TicketLine
from tickets.services.numbers import ticket_number_allocate

CALLS = 100
# Connections open at once: PostgreSQL's default max_connections (100) is shared with whatever else
# runs on the cluster (CI's other jobs); 20 calls at a time still queue on the line's row lock.
CONNECTIONS = 20


def hop_write(
    *, call, barrier: threading.Barrier | None = None, slots: threading.Semaphore | None = None, fail=False
) -> int:
    """A hop's transaction: a number taken, the hop written (or the transaction rolled back)."""
    if barrier:
        barrier.wait(timeout=30)
        if not slots.acquire(timeout=60):
            raise TimeoutError("no database connection slot in 60 s")
    try:
        with transaction.atomic():
            ticket = ticket_number_allocate(line_id=call.line_id)
            TicketHop.objects.create(
                call=call,
                line_id=call.line_id,
                ticket=ticket,
                sequence=1,
                technician_name="Tech",
                called="731",
                started_at=timezone.now(),
            )
            if fail:
                raise RuntimeError("the hop's AGI session died")
            return ticket
    finally:
        if barrier:
            connection.close()
            slots.release()


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_get_contiguous_numbers_none_repeated():
    line = TicketLineFactory(next_ticket=100)
    calls = [TicketCallFactory(line=line) for _ in range(CALLS)]
    barrier, slots = threading.Barrier(CALLS), threading.BoundedSemaphore(CONNECTIONS)
    results, errors = [], []

    def run(call):
        try:
            results.append(hop_write(call=call, barrier=barrier, slots=slots))
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[:3]
    assert sorted(results) == list(range(100, 100 + CALLS))
    assert sorted(TicketHop.objects.values_list("ticket", flat=True)) == list(range(100, 100 + CALLS))
    assert TicketLine.objects.get(pk=line.pk).next_ticket == 100 + CALLS


@pytest.mark.django_db
def test_a_hop_rolled_back_leaves_no_gap():
    line = TicketLineFactory(next_ticket=7)
    first, second = TicketCallFactory(line=line), TicketCallFactory(line=line)
    with pytest.raises(RuntimeError):
        hop_write(call=first, fail=True)
    assert TicketLine.objects.get(pk=line.pk).next_ticket == 7 and not TicketHop.objects.exists()
    assert hop_write(call=second) == 7
    assert TicketLine.objects.get(pk=line.pk).next_ticket == 8


@pytest.mark.django_db(transaction=True)  # no test-wide transaction around it
def test_a_number_is_taken_only_in_the_hops_transaction():
    line = TicketLineFactory()
    with pytest.raises(RuntimeError, match="transaction that writes its hop"):
        ticket_number_allocate(line_id=line.pk)
    assert TicketLine.objects.get(pk=line.pk).next_ticket == 1
