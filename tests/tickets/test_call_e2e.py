"""A ticket line's call end to end on pbxsim through the real pbx process: announcement, confirm
digit, recording, the hunt with a ticket number per hop, the release, the IM by MessageSend."""

import pytest

from telephony.models import CallRecord, PbxServer
from telephony.testing import pbx_process, wait_for
from tests.tickets.conftest import (
    CONFIRMS,
    CONFIRMS_LONG,
    GIVES_UP,
    SCALE,
    SILENT,
    TECH_ANSWERS,
    WRONG_DIGIT,
    messages_sent,
    ran,
    running,
)
from tests.tickets.factories import SmsSettingsFactory, TechnicianFactory
from tickets.models import TicketCall, TicketHop, TicketMessage
from tickets.pbx import Tickets
from tickets.services import calls

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
    steps = ran(sim, CONFIRMS)
    assert [s for s in steps if s.startswith(("Dial", "MixMonitor"))] == [
        f"MixMonitor({recordings / call.recording})",
        "Dial(Local/5552201@phones&Local/5552202@phones,5)",
        "Dial(Local/5552203@phones&Local/5552204@phones,5)",
    ]


def test_the_caller_giving_up_during_the_hunt_notifies_the_last_technician_rung(
    line, two_technicians, pbx, call_line, sim
):
    tech1, _ = two_technicians
    line.ring_seconds = 30
    line.save()
    uniqueid = call_line(GIVES_UP)  # hangs up 15 s after answering: during the first hop (30 s)
    call = ended(uniqueid)
    hop = call.hops.get()
    assert (hop.technician_id, hop.last, hop.answered, hop.dial_status) == (tech1.pk, True, False, "CANCEL")
    assert call.state == TicketCall.State.ABANDONED and call.answered_by is None
    im = im_settled(call)
    assert (im.state, im.to, im.technician_id) == ("sent", "pjsip:5552201", tech1.pk)
    assert not TicketMessage.objects.filter(call=call, channel="sms").exists()  # no SMS settings


@pytest.mark.parametrize("caller", [WRONG_DIGIT, SILENT])
def test_not_confirmed_hears_the_announcement_twice_then_goodbye(
    line, two_technicians, pbx, call_line, sim, caller
):
    uniqueid = call_line(caller)
    call = ended(uniqueid)
    assert call.state == TicketCall.State.UNCONFIRMED and call.confirmed_at is None
    assert not call.hops.exists()
    line.refresh_from_db()
    assert line.next_ticket == 1  # no ticket number taken
    steps = ran(sim, caller)
    assert [s for s in steps if s.startswith(("Playback", "Read", "Dial", "AGI", "MixMonitor"))] == [
        f"AGI(agi://127.0.0.1:{sim.agi_port}/ticket)",
        "Playback(hello-world)",
        "Read(TICKET_KEY,beep,1,,1,5)",
        "Playback(hello-world)",
        "Read(TICKET_KEY,beep,1,,1,5)",
        "Playback(vm-goodbye)",
    ]
    assert not TicketMessage.objects.filter(call=call).exists()
    assert messages_sent(sim) == []


def test_no_technician_active_the_caller_hears_nobody_is_available(line, pbx, call_line, sim):
    TechnicianFactory(line=line, internal="5552201", mobile="", active=False)
    call = ended(call_line(CONFIRMS))
    assert (call.state, call.note) == (TicketCall.State.NOBODY, "no technician active")
    assert not call.hops.exists() and call.recording == ""
    line.refresh_from_db()
    assert line.next_ticket == 1
    steps = ran(sim, CONFIRMS)
    assert "Playback(vm-nobodyavail)" in steps and not any(s.startswith("Dial") for s in steps)
    assert not TicketMessage.objects.filter(call=call).exists()


def test_the_hunt_starts_at_the_next_active_technician_after_an_inactive_one_in_charge(
    line, pbx, call_line, sim
):
    first = TechnicianFactory(line=line, position=1, internal="5552201", mobile="")
    in_charge = TechnicianFactory(line=line, position=2, internal="5552203", mobile="", active=False)
    answers = TechnicianFactory(line=line, position=3, internal=TECH_ANSWERS, mobile="")
    line.in_charge = in_charge
    line.save()
    call = ended(call_line(CONFIRMS))
    hop = call.hops.get()
    assert (hop.technician_id, hop.answered, hop.last, call.answered_by_id) == (
        answers.pk,
        True,
        True,
        answers.pk,
    )
    assert hop.called == TECH_ANSWERS
    assert call.state == TicketCall.State.ANSWERED
    assert first.pk != answers.pk


def test_a_busy_or_unreachable_technician_passes_the_call_on_at_once(line, pbx, call_line, sim):
    line.ring_seconds = 60  # a hop that rang would take 60 s (6 s here)
    line.save()
    TechnicianFactory(line=line, position=1, internal="5551002", mobile="")  # busy
    TechnicianFactory(
        line=line, position=2, internal="Bogus/5552299", mobile="5551004"
    )  # no such tech, congestion
    answers = TechnicianFactory(line=line, position=3, internal=TECH_ANSWERS, mobile="")
    call = ended(call_line(CONFIRMS_LONG), timeout=15)
    hops = list(call.hops.order_by("sequence"))
    assert [(h.dial_status, h.answered, h.last) for h in hops] == [
        ("BUSY", False, False),
        ("CONGESTION", False, False),
        ("ANSWER", True, True),
    ]
    assert call.answered_by_id == answers.pk
    # neither of the first two hops waited for its ring time (60 s on pbxsim: 6 s here)
    assert (hops[2].started_at - hops[0].started_at).total_seconds() < 60 / SCALE


def test_a_recording_directory_that_cannot_be_written_leaves_the_call_going(
    line, two_technicians, pbx, call_line, sim, settings, tmp_path
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.TICKETS_RECORDING_DIR = blocker / "recordings"
    call = ended(call_line(CONFIRMS))
    assert call.state == TicketCall.State.ANSWERED and call.hops.count() == 2
    assert call.recording == ""
    assert call.recording_note.startswith(f"not recorded: cannot create {blocker}/recordings/")
    assert "Not a directory" in call.recording_note
    assert not any(s.startswith("MixMonitor") for s in ran(sim, CONFIRMS))


@pytest.mark.parametrize("sim_args", [["--message-technologies="]])
def test_the_im_failing_on_the_pbx_keeps_asterisks_answer(line, two_technicians, pbx, call_line, sim):
    call = ended(call_line(CONFIRMS))
    im = im_settled(call)
    assert (im.state, im.last_error, im.delivery_status) == (
        "failed",
        "Message technology not found.",
        "Message technology not found.",
    )
    assert im.sent_at is None and im.attempts == 1
    assert messages_sent(sim) == []


def test_concurrent_calls_never_share_a_ticket_number(line, pbx, call_line, sim):
    line.wrap, line.rounds = True, 2  # two rounds over two technicians who never answer: 4 hops a call
    line.save()
    tech1 = TechnicianFactory(line=line, position=1, internal="5552201", mobile="5552202")
    tech2 = TechnicianFactory(line=line, position=2, internal="5552203", mobile="")
    uniqueids = [call_line(CONFIRMS) for _ in range(5)]
    calls = [ended(u, timeout=40) for u in uniqueids]
    assert {c.state for c in calls} == {TicketCall.State.NOBODY}
    for call in calls:
        hops = list(call.hops.order_by("sequence"))
        assert [h.technician_id for h in hops] == [tech1.pk, tech2.pk, tech1.pk, tech2.pk]
        assert [h.last for h in hops] == [False, False, False, True]
    tickets = sorted(TicketHop.objects.filter(line=line).values_list("ticket", flat=True))
    assert tickets == list(range(1, 21))
    line.refresh_from_db()
    assert line.next_ticket == 21


def test_the_pbx_process_away_during_a_hop_does_not_ring_the_same_technician_again(
    line, two_technicians, server, call_line, sim
):
    tech1, _ = two_technicians
    line.ring_seconds = 80  # 8 s here: time to stop the process while tech1 rings
    line.save()
    process = running(server)
    try:
        uniqueid = call_line(CONFIRMS_LONG)
        wait_for(lambda: TicketHop.objects.filter(call__uniqueid=uniqueid).exists(), what="the first hop")
    finally:
        process.__exit__(None, None, None)
    # the next hop's AGI finds no FastAGI server: ss-noservice, and the caller is hung up
    wait_for(lambda: "Return()" in ran(sim, CONFIRMS_LONG), timeout=25, what="the hangup handler")
    steps = ran(sim, CONFIRMS_LONG)
    assert [s for s in steps if s.startswith("Dial")] == [
        "Dial(Local/5552201@phones&Local/5552202@phones,80)"
    ]
    assert "Playback(ss-noservice)" in steps
    process = running(server)  # back: the call whose end it did not hear is ended on start
    try:
        call = ended(uniqueid)
        im = im_settled(call)
    finally:
        process.__exit__(None, None, None)
    hop = call.hops.get()
    assert (hop.technician_id, hop.last, hop.answered) == (tech1.pk, True, False)
    assert call.state == TicketCall.State.FAILED and "pbx process was away" in call.note
    assert (im.state, im.technician_id) == ("sent", tech1.pk)


def test_the_caller_hanging_up_during_the_announcement_takes_no_ticket(line, two_technicians, pbx, call_line):
    call = ended(call_line("5551007"))  # answers and hangs up 1.5 s later
    assert (call.state, call.note) == (TicketCall.State.ABANDONED, "the caller hung up before confirming")
    assert not call.hops.exists() and not TicketMessage.objects.filter(call=call).exists()
    line.refresh_from_db()
    assert line.next_ticket == 1


def test_a_did_with_no_active_line_hears_no_service(line, two_technicians, pbx, call_line, caplog):
    line.active = False
    line.save()
    uniqueid = call_line(CONFIRMS)
    wait_for(
        lambda: CallRecord.objects.filter(uniqueid=uniqueid, state="ended").exists(), what="the caller's end"
    )
    assert not TicketCall.objects.exists()
    assert f"no active ticket line for {line.number}" in caplog.text


def test_an_im_left_pending_by_a_process_that_died_is_sent_on_start(line, two_technicians, server, sim):
    tech1, _ = two_technicians
    opened = calls.ticket_call_open(
        server_id=server.pk, uniqueid="1765000000.7", line_id=line.pk, caller="0347261928", called=line.number
    )
    calls.ticket_hop_next(call_id=opened.call_id, uniqueid="1765000000.7")
    written = calls.ticket_call_end(call_id=opened.call_id, stage=calls.STAGE_HUNT, dial_status="CANCEL")
    process = running(server)
    try:
        im = wait_for(
            lambda: TicketMessage.objects.filter(pk=written["im"], state="sent").first(), what="the IM sent"
        )
    finally:
        process.__exit__(None, None, None)
    assert [m["to"] for m in messages_sent(sim)] == ["pjsip:5552201"] == [im.to]
    assert im.attempts == 1 and im.technician_id == tech1.pk


def test_a_line_confirmed_with_the_hash_key(line, pbx, call_line):
    line.confirm_digit = "#"
    line.save()
    TechnicianFactory(line=line, internal=TECH_ANSWERS, mobile="")
    call = ended(call_line("5573004@ticket-phones"))  # keys # 2.5 s after answering
    assert call.state == TicketCall.State.ANSWERED and call.hops.get().answered


def test_a_hash_is_no_confirmation_on_a_line_confirmed_with_1(line, pbx, call_line):
    TechnicianFactory(line=line, internal=TECH_ANSWERS, mobile="")
    call = ended(call_line("5573004@ticket-phones"))
    assert call.state == TicketCall.State.UNCONFIRMED and not call.hops.exists()


class CutShort(Tickets):
    """The hop script dies after its hop was written, before the dialplan has it: at the hop `at`
    (the earlier ones go as usual)."""

    def __init__(self, at: int = 1):
        self.at = at

    async def hop(self, ctx, call):
        call_id = int(await call.get_variable("TICKET_CALL"))
        if await ctx.read(lambda: TicketHop.objects.filter(call_id=call_id).count()) + 1 < self.at:
            return await super().hop(ctx, call)
        dial_status = await call.get_variable("DIALSTATUS") or ""
        await ctx.db(calls.ticket_hop_next, call_id=call_id, uniqueid=call.uniqueid, dial_status=dial_status)


def test_a_hop_script_cut_short_dials_nobody_and_loses_no_ticket(
    line, two_technicians, server, call_line, sim
):
    tech1, _ = two_technicians
    with pbx_process([server], apps=[CutShort()]):
        wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
        call = ended(call_line(CONFIRMS))
    steps = ran(sim, CONFIRMS)
    assert "Playback(ss-noservice)" in steps and not any(s.startswith("Dial") for s in steps)
    assert (call.state, call.note) == (
        TicketCall.State.FAILED,
        "the pbx process could not be reached for the next hop",
    )
    hop = call.hops.get()
    assert (hop.ticket, hop.technician_id, hop.dial_status, hop.answered) == (1, tech1.pk, "", False)
    # Nobody was rung: no hop is the call's end (_END) and nobody gets a ticket to call back.
    assert not hop.last and not TicketMessage.objects.filter(call=call).exists()


def test_a_hop_script_cut_short_sends_the_ticket_to_the_technician_last_rung(
    line, two_technicians, server, call_line, sim
):
    tech1, tech2 = two_technicians
    with pbx_process([server], apps=[CutShort(at=2)]):
        wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
        call = ended(call_line(CONFIRMS))
        im = im_settled(call)
    assert call.state == TicketCall.State.FAILED
    first, cut = call.hops.order_by("sequence")
    assert [(h.ticket, h.technician_id, h.dial_status, h.last) for h in (first, cut)] == [
        (1, tech1.pk, "NOANSWER", True),
        (2, tech2.pk, "", False),
    ]
    assert (im.technician_id, im.hop_id) == (tech1.pk, first.pk) and "_Ticket_1_" in im.body
    assert [m.technician_id for m in TicketMessage.objects.filter(call=call)] == [tech1.pk]
