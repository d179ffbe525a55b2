"""A ticket line's call end to end on pbxsim through the real pbx process: announcement, confirm
digit, recording, the hunt with a ticket number per hop, the release, the IM by MessageSend."""

import pytest

from telephony.testing import wait_for
from tests.tickets.conftest import CONFIRMS, GIVES_UP, messages_sent
from tests.tickets.factories import SmsSettingsFactory
from tickets.models import TicketCall, TicketMessage

pytestmark = pytest.mark.django_db(transaction=True)


def ended(uniqueid, timeout=30):
    return wait_for(
        lambda: TicketCall.objects.filter(uniqueid=uniqueid, state__in=TicketCall.ENDED).first(),
        timeout=timeout,
        what=f"the end of ticket call {uniqueid}",
    )


def im_settled(call, timeout=10):
    return wait_for(
        lambda: TicketMessage.objects.filter(call=call, channel="im").exclude(state="pending").first(),
        timeout=timeout,
        what="the IM's MessageSend",
    )


def test_a_confirmed_call_is_answered_at_the_second_hop(
    line, two_technicians, pbx, call_line, sim, recordings
):
    tech1, tech2 = two_technicians
    SmsSettingsFactory(company=line.company)
    line.next_ticket = 100
    line.save()
    uniqueid = call_line(CONFIRMS)
    call = ended(uniqueid)
    hops = list(call.hops.order_by("sequence"))
    assert [(h.sequence, h.ticket, h.technician_id, h.answered, h.last) for h in hops] == [
        (1, 100, tech1.pk, False, False),
        (2, 101, tech2.pk, True, True),
    ]
    assert (hops[0].dial_status, hops[1].dial_status) == ("NOANSWER", "ANSWER")
    assert (call.state, call.answered_by_id, call.caller, call.called) == (
        TicketCall.State.ANSWERED,
        tech2.pk,
        CONFIRMS,
        line.number,
    )
    assert call.confirmed_at is not None and call.ended_at is not None
    assert (
        call.recording
        == f"{line.company.slug}/{call.started_at:%Y}/{call.started_at:%m}/ticket-{line.pk}-100.wav"
    )
    assert call.recording_note == ""
    wait_for((recordings / call.recording).exists, what="the recording written at the end of the call")
    im = im_settled(call)
    assert (im.state, im.to, im.technician_id, im.hop_id) == ("sent", "pjsip:5552203", tech2.pk, hops[1].pk)
    assert "_Ticket_101_Caller_5551032_Called_5552203" in im.body
    assert [(m["to"], m["body"]) for m in messages_sent(sim)] == [(im.to, im.body)]
    sms = TicketMessage.objects.get(call=call, channel="sms")
    assert (sms.state, sms.to) == ("pending", "5552204")
    line.refresh_from_db()
    assert line.next_ticket == 102


def test_the_caller_giving_up_during_the_hunt_notifies_the_last_technician_rung(
    line, two_technicians, pbx, call_line, sim
):
    tech1, _ = two_technicians
    uniqueid = call_line(GIVES_UP)  # hangs up 6.25 s after answering: during the first hop (5 s)
    call = ended(uniqueid)
    hop = call.hops.get()
    assert (hop.technician_id, hop.last, hop.answered, hop.dial_status) == (tech1.pk, True, False, "CANCEL")
    assert call.state == TicketCall.State.ABANDONED and call.answered_by is None
    im = im_settled(call)
    assert (im.state, im.to, im.technician_id) == ("sent", "pjsip:5552201", tech1.pk)
    assert not TicketMessage.objects.filter(call=call, channel="sms").exists()  # no SMS settings
