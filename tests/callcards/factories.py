"""Call cards' test data: batches and cards with a known PIN (sealed and digested as the platform does)."""

import datetime as dt

import factory
from django.contrib.auth.models import Permission
from django.utils import timezone

from callcards import pins
from callcards.lifecycle import Status
from callcards.models import Card, CardBatch, CardCall, talk_minutes
from tests.factories import UserFactory


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
    """A billed call: `agent_talk_sec` given, the minutes and balances follow as billing sets them."""

    class Meta:
        model = CardCall

    card = factory.SubFactory(CardFactory)
    company = factory.SelfAttribute("card.company")
    uniqueid = factory.Sequence(lambda n: f"1764000000.{n}")
    state = CardCall.State.BILLED
    call_time = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=10))
    agent_time = factory.LazyAttribute(lambda o: o.call_time + dt.timedelta(seconds=20))
    end_time = factory.LazyAttribute(
        lambda o: o.agent_time + dt.timedelta(seconds=o.agent_talk_sec) if o.agent_time else None
    )
    agent_talk_sec = 90
    agent_talk_min = factory.LazyAttribute(lambda o: talk_minutes(o.agent_talk_sec))
    balance_minutes_start = factory.LazyAttribute(lambda o: o.card.balance_minutes)
    balance_minutes_end = factory.LazyAttribute(lambda o: max(0, o.balance_minutes_start - o.agent_talk_min))
    phone_number = "5551001"
    inbound_did = "5550000"


def callcard_admin(company=None, **kwargs):
    """A company user holding callcards.callcard_admin."""
    user = UserFactory(**({"company": company} if company is not None else {}), **kwargs)
    user.user_permissions.add(
        Permission.objects.get(codename="callcard_admin", content_type__app_label="callcards")
    )
    return user
