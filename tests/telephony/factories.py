import factory

from pbxsim.harness import free_port
from telephony.models import CallRecord, DialRoute, PbxServer


class PbxServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PbxServer
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"pbx-{n}")
    ami_host = "127.0.0.1"
    ami_port = 5038
    ami_username = "platform"
    ami_secret = "platform-secret"
    agi_bind_host = "127.0.0.1"
    agi_bind_port = factory.LazyFunction(free_port)
    outbound_caller_id = '"Platform" <5550000>'
    route = factory.RelatedFactory(
        "tests.telephony.factories.DialRouteFactory", factory_related_name="server"
    )


class DialRouteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DialRoute

    name = "default"
    template = "Local/{number}@phones"


class CallRecordFactory(factory.django.DjangoModelFactory):
    """A pushed call leg (no PBX server needed); pass times and outcome as a test needs them."""

    class Meta:
        model = CallRecord

    source = "push:tests"
    uniqueid = factory.Sequence(lambda n: f"leg-{n}")
    linkedid = factory.SelfAttribute("uniqueid")
    company = factory.SubFactory("tests.factories.CompanyFactory")
    caller = "5550000"
    callee = "5551001"
