"""Queues' test data: a queue on a PBX server, agents reached at the simulator's phones, tiers."""

import factory
from django.utils import timezone

from queues.models import Agent, Member, Queue, Tier


class QueueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Queue

    company = factory.SubFactory("tests.factories.CompanyFactory")
    name = factory.Sequence(lambda n: f"support{n}")
    server = factory.SubFactory("tests.telephony.factories.PbxServerFactory")


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    company = factory.SubFactory("tests.factories.CompanyFactory")
    name = factory.Sequence(lambda n: f"{1000 + n}")
    contact = factory.Sequence(lambda n: f"55520{n % 100:02d}")
    status = Agent.Status.AVAILABLE
    state = Agent.State.WAITING


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    queue = factory.SubFactory(QueueFactory)
    agent = factory.SubFactory(AgentFactory, company=factory.SelfAttribute("..queue.company"))


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    queue = factory.SubFactory(QueueFactory)
    session_uuid = factory.Sequence(lambda n: f"caller-{n}")
    channel = factory.Sequence(lambda n: f"PJSIP/trunk-{n:08x}")
    cid_name = "Caller"
    cid_number = factory.Sequence(lambda n: f"5551{n:03d}")
    joined_at = factory.LazyFunction(timezone.now)
    score_from = factory.SelfAttribute("joined_at")
