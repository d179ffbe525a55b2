"""Ticket lines' test data: a line on a PBX server, its technicians, calls and hops."""

import datetime as dt

import factory
from django.utils import timezone

from tests.telephony.factories import PbxServerFactory
from tickets.models import SmsSettings, Technician, TicketCall, TicketHop, TicketLine


class TicketLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketLine

    company = factory.SubFactory("tests.factories.CompanyFactory")
    server = factory.SubFactory(PbxServerFactory)
    name = factory.Sequence(lambda n: f"Emergency {n}")
    number = factory.Sequence(lambda n: f"{5557000 + n}")
    ring_seconds = 5


class TechnicianFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Technician

    line = factory.SubFactory(TicketLineFactory)
    name = factory.Sequence(lambda n: f"Tech {n}")
    position = factory.Sequence(lambda n: n)
    internal = factory.Sequence(lambda n: f"{5552201 + 2 * (n % 2)}")
    mobile = factory.Sequence(lambda n: f"{5552202 + 2 * (n % 2)}")


class SmsSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SmsSettings
        django_get_or_create = ["company"]

    company = factory.SubFactory("tests.factories.CompanyFactory")
    provider = SmsSettings.Provider.CONSOLE


class TicketCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketCall

    line = factory.SubFactory(TicketLineFactory)
    server = factory.SelfAttribute("line.server")
    uniqueid = factory.Sequence(lambda n: f"1765000000.{n}")
    caller = "0347261928"
    called = factory.SelfAttribute("line.number")
    started_at = factory.LazyFunction(timezone.now)


class TicketHopFactory(factory.django.DjangoModelFactory):
    """A hop; its ticket number is taken from the line's counter like a real hop's."""

    class Meta:
        model = TicketHop

    call = factory.SubFactory(TicketCallFactory)
    line = factory.SelfAttribute("call.line")
    sequence = factory.Sequence(lambda n: n + 1)
    technician = factory.SubFactory(TechnicianFactory, line=factory.SelfAttribute("..line"))
    technician_name = factory.LazyAttribute(lambda o: o.technician.name if o.technician else "gone")
    called = factory.LazyAttribute(lambda o: o.technician.internal if o.technician else "732")
    started_at = factory.LazyAttribute(lambda o: o.call.started_at + dt.timedelta(seconds=5))

    @factory.lazy_attribute
    def ticket(self):
        line = TicketLine.objects.get(pk=self.line.pk)
        TicketLine.objects.filter(pk=line.pk).update(next_ticket=line.next_ticket + 1)
        return line.next_ticket
