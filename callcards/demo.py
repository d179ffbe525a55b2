"""The call cards demo of `make run`: a demo card of the demo company, sent to the queue
support@demo, and its card line: `manage.py call 5551040` rings a demo holder who dials the line
(DID 5559040), keys the card and its PIN, waits in the queue and talks to an agent; the card is
billed when the call ends. The card id and PIN are in telephony/asterisk/demo/phones.conf too."""

from django.utils import timezone

from callcards import pins
from callcards.lifecycle import Status
from callcards.models import Card, CardBatch

CARD_ID = "400000001042"
PIN = "20262026"  # the demo's own: printed by demo_data, keyed by the demo phone
DID = "5559040"
HOLDER_PHONE = "5551040"
MINUTES = 5


def load_demo_callcards(sender, *, company, write, **kwargs):
    from queues.demo import load_demo_queues
    from queues.models import Queue

    # callcards comes before queues in INSTALLED_APPS, so its demo loads first: the queues demo
    # (idempotent, and telling its own line when its turn comes) makes the queue now.
    load_demo_queues(sender, company=company, write=lambda text: None)
    queue = Queue.objects.filter(company=company, name="support").first()
    if queue is None:  # no demo PBX server
        return
    batch, _ = CardBatch.objects.get_or_create(
        company=company,
        run="DEMO",
        batch="1",
        defaults={
            "count": 1,
            "initial_minutes": MINUTES,
            "warning_minutes": 1,
            "did": DID,
            "queue": queue,
            "job": CardBatch.Job.DONE,
            "generated": 1,
        },
    )
    card, created = Card.objects.get_or_create(
        card_id=CARD_ID,
        defaults={
            "company": company,
            "batch": batch,
            "pin_sealed": pins.pin_seal(PIN),
            "pin_digest": pins.pin_digest(PIN),
            "pack": 1,
            "sequence": 1,
            "status": Status.ACTIVE,
            "balance_minutes": MINUTES,
            "warning_minutes": 1,
            "queue": queue,
            "did": DID,
            "create_user": "demo_data",
            "create_time": timezone.now(),
            "activate_user": "demo_data",
            "activate_time": timezone.now(),
        },
    )
    if card.company_id != company.pk:
        write(f"  call card:                {CARD_ID} belongs to another company: no demo card")
        return
    write(
        f"  call card:                {CARD_ID}, PIN {PIN}, {card.balance_minutes} min left, status "
        f"{card.status}, queue {queue.full_name}, line {DID}; `python manage.py call {HOLDER_PHONE}` "
        f"dials in with it"
    )
