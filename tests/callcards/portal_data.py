"""Test data of the portal's call card tests: card calls as the dial-in leaves them, and users who
hold the callcard_admin permission."""

import datetime as dt

import factory
from django.contrib.auth.models import Permission
from django.utils import timezone

from callcards.models import CardCall, talk_minutes
from tests.callcards.factories import CardFactory
from tests.factories import UserFactory


def callcard_admin(company=None, **kwargs):
    """A company user holding callcards.callcard_admin."""
    user = UserFactory(**({"company": company} if company is not None else {}), **kwargs)
    user.user_permissions.add(
        Permission.objects.get(codename="callcard_admin", content_type__app_label="callcards")
    )
    return user


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
    agent = "1000"
    agent_talk_sec = 90
    agent_talk_min = factory.LazyAttribute(lambda o: talk_minutes(o.agent_talk_sec))
    balance_minutes_start = factory.LazyAttribute(lambda o: o.card.balance_minutes)
    balance_minutes_end = factory.LazyAttribute(lambda o: max(0, o.balance_minutes_start - o.agent_talk_min))
    phone_number = "5551001"
    inbound_did = "5550000"
