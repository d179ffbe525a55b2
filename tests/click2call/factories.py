"""Click2call's test data. Campaigns call from France by default (`06 12 34 56 78`), and
their tariff also rates the simulator's phones as US numbers: `+1 212 555 1001` is a valid
number whose last seven digits are the test phone 5551001. A tariff made on its own has only
the rates it is given."""

from decimal import Decimal

import factory

from click2call.models import (
    BlockedPrefix,
    CallAttempt,
    CallComment,
    CallRequest,
    Campaign,
    CampaignOperator,
    CommentField,
    CommentType,
    Operator,
    Rate,
    Tariff,
    hash_secret_key,
)

# A campaign's tariff: prefix -> (destination, price per minute).
RATES = {
    "33": ("France", Decimal("0.05000")),
    "336": ("France - Mobile", Decimal("0.12000")),
    "331": ("France - Paris", Decimal("0.02000")),
    "1212555": ("USA - New York - test phones", Decimal("0.01000")),
}
FRENCH_MOBILE = "+33612345678"


class TariffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tariff
        skip_postgeneration_save = True

    company = factory.SubFactory("tests.factories.CompanyFactory")
    name = factory.Sequence(lambda n: f"Tariff {n}")

    @factory.post_generation
    def rates(obj, create, extracted, **kwargs):
        """The rates passed as rates={prefix: (destination, price)}."""
        if create and extracted:
            Rate.objects.bulk_create(
                Rate(tariff=obj, prefix=prefix, destination=destination, price=price)
                for prefix, (destination, price) in extracted.items()
            )


class RateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rate

    tariff = factory.SubFactory(TariffFactory)
    # Germany: a prefix no campaign's RATES has.
    prefix = factory.Sequence(lambda n: f"49{n}")
    destination = "Germany"
    price = Decimal("0.03000")


class BlockedPrefixFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BlockedPrefix

    company = factory.SubFactory("tests.factories.CompanyFactory")
    prefix = "3389"
    reason = "premium rate"


class OperatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operator

    company = factory.SubFactory("tests.factories.CompanyFactory")
    name = factory.Sequence(lambda n: f"Operator {n}")
    # A French mobile that reaches the simulator's company phone 5552001 (answers after 1 s, talks 2 s).
    number = "+33612345201"


class CampaignFactory(factory.django.DjangoModelFactory):
    """A campaign with an operator (`with_operator=False`: none); its secret key in plain is
    `campaign.secret_key` (tests only)."""

    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    company = factory.SubFactory("tests.factories.CompanyFactory")
    name = factory.Sequence(lambda n: f"Campaign {n}")
    server = factory.SubFactory("tests.telephony.factories.PbxServerFactory")
    tariff = factory.SubFactory(TariffFactory, company=factory.SelfAttribute("..company"), rates=RATES)
    allowed_origins = "https://shop.example.com\nhttps://www.example.com/"
    default_country = "FR"
    redial_pause = 10

    @factory.post_generation
    def secret_key(obj, create, extracted, **kwargs):
        obj.secret_key = extracted or f"c2c_sk_test-secret-{obj.public_key[7:]}"
        obj.secret_key_hash = hash_secret_key(obj.secret_key)
        obj.secret_key_hint = obj.secret_key[:8]
        if create:
            obj.save(update_fields=["secret_key_hash", "secret_key_hint"])

    @factory.post_generation
    def with_operator(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            operator = OperatorFactory(company=obj.company)
            CampaignOperator.objects.create(campaign=obj, operator=operator)


class CallRequestFactory(factory.django.DjangoModelFactory):
    """A pending request from a French mobile; each one another number, so that open requests
    of one campaign do not collide."""

    class Meta:
        model = CallRequest

    campaign = factory.SubFactory(CampaignFactory)
    company = factory.SelfAttribute("campaign.company")
    number = factory.Sequence(lambda n: f"+336123{n:05d}")
    name = "Ana Visitor"
    consent = True
    destination = "France - Mobile"
    country = "FR"
    carrier = "Orange"


class CallAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallAttempt

    request = factory.SubFactory(CallRequestFactory)
    seq = factory.Sequence(lambda n: n + 1)
    first_party = Campaign.FirstParty.VISITOR
    status = CallAttempt.Status.DIALING
    channel_id = factory.Sequence(lambda n: f"c2c-test-{n}")


class CommentTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommentType

    company = factory.SubFactory("tests.factories.CompanyFactory")
    name = factory.Sequence(lambda n: f"Outcome {n}")


class CommentFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommentField

    comment_type = factory.SubFactory(CommentTypeFactory)
    name = factory.Sequence(lambda n: f"field{n}")


class CallCommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallComment

    request = factory.SubFactory(CallRequestFactory)
    comment_type = factory.SubFactory(CommentTypeFactory, company=factory.SelfAttribute("..request.company"))
