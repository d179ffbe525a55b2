"""Call cards' test data: batches and cards with a known PIN (sealed and digested as the platform does)."""

import factory
from django.utils import timezone

from callcards import pins
from callcards.lifecycle import Status
from callcards.models import Card, CardBatch, CardCall


class CardBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CardBatch

    company = factory.SubFactory("tests.factories.CompanyFactory")
    run = "R1"
    batch = factory.Sequence(lambda n: f"B{n}")
    count = 1
    initial_minutes = 10
    job = CardBatch.Job.DONE
    generated = factory.SelfAttribute("count")


class CardFactory(factory.django.DjangoModelFactory):
    """A card; `pin` (not a field) is its PIN in clear, 8 digits by default."""

    class Meta:
        model = Card
        exclude = ["pin"]

    company = factory.SubFactory("tests.factories.CompanyFactory")
    batch = factory.SubFactory(CardBatchFactory, company=factory.SelfAttribute("..company"))
    pin = factory.Sequence(lambda n: f"{40000000 + n:08d}")
    card_id = factory.Sequence(lambda n: f"{10000000000 + n}{pins.luhn_digit(f'{10000000000 + n}')}")
    pin_sealed = factory.LazyAttribute(lambda o: pins.pin_seal(o.pin))
    pin_digest = factory.LazyAttribute(lambda o: pins.pin_digest(o.pin))
    pack = 1
    sequence = factory.Sequence(lambda n: n + 1)
    status = Status.ACTIVE
    balance_minutes = 10
    create_time = factory.LazyFunction(timezone.now)


class CardCallFactory(factory.django.DjangoModelFactory):
    """A call on a card, billed by default (an open one blocks the card's next call)."""

    class Meta:
        model = CardCall

    card = factory.SubFactory(CardFactory)
    company = factory.SelfAttribute("card.company")
    uniqueid = factory.Sequence(lambda n: f"1765000000.{n}")
    state = CardCall.State.BILLED
    balance_minutes_start = factory.SelfAttribute("card.balance_minutes")
    call_time = factory.LazyFunction(timezone.now)
