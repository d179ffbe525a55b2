"""Factories for the portal's tests (the lead merges them with tests/click2call/factories.py)."""

from decimal import Decimal

import factory

from click2call.models import (
    BlockedPrefix,
    CallAttempt,
    CallRequest,
    Campaign,
    CommentField,
    CommentType,
    Operator,
    Rate,
    Tariff,
)
from tests.factories import CompanyFactory
from tests.telephony.factories import PbxServerFactory


class TariffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tariff

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Tariff {n}")


class RateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rate

    tariff = factory.SubFactory(TariffFactory)
    prefix = "336"
    destination = "France - Mobile"
    price = Decimal("0.05000")


class OperatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operator

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Operator {n}")
    number = factory.Sequence(lambda n: f"55520{n:02d}")


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    server = factory.SubFactory(PbxServerFactory)
    tariff = factory.SubFactory(TariffFactory, company=factory.SelfAttribute("..company"))


class CallRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallRequest

    campaign = factory.SubFactory(CampaignFactory)
    company = factory.SelfAttribute("campaign.company")
    number = factory.Sequence(lambda n: f"+336123{n:05d}")
    consent = True
    status = CallRequest.Status.FAILED_USER
    destination = "France - Mobile"
    country = "FR"
    carrier = "Orange"


class CallAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallAttempt

    request = factory.SubFactory(CallRequestFactory)
    seq = factory.Sequence(lambda n: n + 1)
    first_party = Campaign.FirstParty.VISITOR
    status = CallAttempt.Status.FAILED_USER
    channel_id = factory.Sequence(lambda n: f"c2c-test-{n}")


class BlockedPrefixFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BlockedPrefix

    company = factory.SubFactory(CompanyFactory)
    prefix = "33899"


class CommentTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommentType

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Outcome {n}")


class CommentFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommentField

    comment_type = factory.SubFactory(CommentTypeFactory)
    name = factory.Sequence(lambda n: f"field{n}")
