"""The ticket's text (the seed's format, or the line's template), the hop's log line, the IM address,
and which messages an ended call writes: only to its last hop's technician, an SMS only when the
company sends SMS, each once."""

import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import ValidationError

from tests.tickets.factories import (
    SmsSettingsFactory,
    TechnicianFactory,
    TicketCallFactory,
    TicketHopFactory,
    TicketLineFactory,
)
from tickets.models import SmsSettings, Technician, TicketMessage
from tickets.services.messages import (
    hop_log_line,
    im_address,
    ticket_messages_queue,
    ticket_text,
)
from tickets.validators import template_check, validate_message_template

pytestmark = pytest.mark.django_db

ROME = zoneinfo.ZoneInfo("Europe/Rome")
SEED = "12.10.2012_14.00_12.10.2012_14.05_Ticket_1234_Caller_03472619287_Called_732"


def seed_hop(**fields):
    """The seed's example: a call from 03472619287 answered at 732, 14:00 to 14:05 in Italy."""
    line = TicketLineFactory(company__time_zone="Europe/Rome")
    call = TicketCallFactory(
        line=line, caller="03472619287", started_at=dt.datetime(2012, 10, 12, 13, 59, tzinfo=ROME)
    )
    values = {
        "call": call,
        "ticket": 1234,
        "called": "732",
        "started_at": dt.datetime(2012, 10, 12, 14, 0, 30, tzinfo=ROME),
        "ended_at": dt.datetime(2012, 10, 12, 14, 5, 59, tzinfo=ROME),
    }
    return TicketHopFactory(**(values | fields))


def text(hop, template):
    return ticket_text(hop=hop, template=template, caller=hop.call.caller, tz=hop.line.company.tzinfo)


def test_the_default_text_is_the_seeds_in_the_companys_time_zone():
    hop = seed_hop()
    assert text(hop, hop.line.message_template) == SEED
    # The same hop read from Tokyo: the company's clock, not the server's.
    assert ticket_text(
        hop=hop, template=hop.line.message_template, caller="03472619287", tz=zoneinfo.ZoneInfo("Asia/Tokyo")
    ).startswith("12.10.2012_21.00_12.10.2012_21.05_")


def test_a_hop_not_ended_yet_ends_when_it_started():
    hop = seed_hop(ended_at=None)
    assert text(hop, hop.line.message_template).startswith("12.10.2012_14.00_12.10.2012_14.00_Ticket_1234")


def test_a_custom_template_is_filled_in():
    hop = seed_hop()
    template = (
        "Ticket {ticket}: {caller} called {called} on {start_date} from {start_time} to {end_date} {end_time}"
    )
    assert (
        text(hop, template)
        == "Ticket 1234: 03472619287 called 732 on 12.10.2012 from 14.00 to 12.10.2012 14.05"
    )


def test_the_text_is_one_line_of_at_most_500_characters():
    hop = seed_hop()
    hop.call.caller = "0347\r\n2619287"  # a caller ID is anybody's
    assert text(hop, "Ticket {ticket}\n caller   {caller}") == "Ticket 1234 caller 0347 2619287"
    assert len(text(hop, "{caller}" * 40)) <= 500
    hop.call.caller = "9" * 40
    assert len(text(hop, "{caller}" * 40)) == 500


@pytest.mark.parametrize(
    "template",
    [
        "Ticket {number}",
        "{ticket.__class__}",
        "{caller.__init__.__globals__}",
        "{ticket[0]}",
        "{called!r}",
        "{ticket:>99999}",
        "{}",
        "{0}",
        "Ticket {ticket",
        "Ticket ticket}",
    ],
)
def test_template_check_refuses_unknown_fields_attributes_indexes_and_bad_braces(template):
    with pytest.raises(ValueError):
        template_check(template)


@pytest.mark.parametrize(
    "template", ["{start_date}_{ticket}", "Ticket {ticket} {{literal}} from {caller}", "no field at all", ""]
)
def test_template_check_takes_the_known_fields(template):
    template_check(template)


def test_the_forms_validator_says_which_field_is_unknown():
    validate_message_template("Ticket {ticket}")
    with pytest.raises(ValidationError) as error:
        validate_message_template("Ticket {ticket} for {customer}")
    assert error.value.messages[0].startswith("unknown field {customer}: use {start_date}")


def test_a_stored_template_that_no_longer_passes_falls_back_to_the_seeds():
    hop = seed_hop()
    assert text(hop, "Ticket {ticket.__class__}") == SEED


def test_the_log_line_is_the_seeds_with_end_on_the_last_hop():
    hop = seed_hop()
    hop.line.message_template = "Ticket {ticket}"  # the log keeps the seed's format whatever the SMS says
    assert hop_log_line(hop=hop, caller="03472619287", tz=ROME) == SEED
    hop.last = True
    assert hop_log_line(hop=hop, caller="03472619287", tz=ROME) == SEED + "_END"


@pytest.mark.parametrize(
    ("internal", "address"),
    [
        ("PJSIP/732", "pjsip:732"),
        ("732", "pjsip:732"),
        ("SIP/alice", "sip:alice"),
        ("PJSIP/732@office", "pjsip:732@office"),
    ],
)
def test_the_im_address_is_made_from_the_internal_phone(internal, address):
    assert im_address(internal) == address


def ended_call(*, sms: str | None = SmsSettings.Provider.CONSOLE, **last_tech):
    """A call that rang Anna first, then Bruno (the last hop, `_END`)."""
    line = TicketLineFactory()
    if sms is not None:
        SmsSettingsFactory(company=line.company, provider=sms)
    anna = TechnicianFactory(line=line, name="Anna", internal="PJSIP/731", mobile="3470000731", sms_number="")
    bruno = TechnicianFactory(
        line=line,
        name="Bruno",
        **({"internal": "PJSIP/732", "mobile": "3470000732", "sms_number": ""} | last_tech),
    )
    call = TicketCallFactory(line=line)
    TicketHopFactory(call=call, technician=anna, sequence=1)
    TicketHopFactory(call=call, technician=bruno, sequence=2, last=True)
    return call, bruno


def messages(call):
    return {m.channel: (m.to, m.technician.name, m.state) for m in TicketMessage.objects.filter(call=call)}


def test_only_the_last_hops_technician_gets_the_sms_and_the_im(django_capture_on_commit_callbacks):
    call, bruno = ended_call()
    with django_capture_on_commit_callbacks() as callbacks:
        written = ticket_messages_queue(call_id=call.pk)
    assert messages(call) == {
        "sms": ("3470000732", "Bruno", "pending"),
        "im": ("pjsip:732", "Bruno", "pending"),
    }
    assert set(written) == {"sms", "im"} and written["sms"] == TicketMessage.objects.get(channel="sms").pk
    sms = TicketMessage.objects.get(channel="sms")
    assert sms.body == text(sms.hop, call.line.message_template) and sms.hop.last
    assert len(callbacks) == 1  # the SMS's send, after commit; the IM is the pbx process's


def test_the_sms_number_and_im_address_win_over_the_mobile_and_the_internal_phone():
    call, _ = ended_call(sms_number="+393331234567", im_address="pjsip:bruno@desk")
    ticket_messages_queue(call_id=call.pk)
    assert messages(call) == {
        "sms": ("+393331234567", "Bruno", "pending"),
        "im": ("pjsip:bruno@desk", "Bruno", "pending"),
    }


@pytest.mark.parametrize("sms", [None, SmsSettings.Provider.NONE])
def test_no_sms_without_sms_settings_or_with_provider_none(sms, django_capture_on_commit_callbacks):
    call, _ = ended_call(sms=sms)
    with django_capture_on_commit_callbacks() as callbacks:
        assert list(ticket_messages_queue(call_id=call.pk)) == ["im"]
    assert list(messages(call)) == ["im"] and callbacks == []


def test_no_sms_to_a_technician_without_a_number():
    call, _ = ended_call(mobile="", sms_number="")
    ticket_messages_queue(call_id=call.pk)
    assert list(messages(call)) == ["im"]


def test_the_messages_are_written_once(django_capture_on_commit_callbacks):
    call, _ = ended_call(sms=SmsSettings.Provider.HTTP)
    ticket_messages_queue(call_id=call.pk)
    with django_capture_on_commit_callbacks() as callbacks:
        assert ticket_messages_queue(call_id=call.pk) == {}  # the backstop's second end, say
    assert TicketMessage.objects.filter(call=call).count() == 2 and callbacks == []


def test_a_call_without_a_last_hop_or_whose_technician_is_gone_writes_nothing():
    unconfirmed = TicketCallFactory()
    assert ticket_messages_queue(call_id=unconfirmed.pk) == {}
    call, bruno = ended_call()
    Technician.objects.filter(pk=bruno.pk).delete()
    assert ticket_messages_queue(call_id=call.pk) == {}
    assert not TicketMessage.objects.exists()
