"""The call's services: the hunt order, each hop and its ticket number, the end once, the IM."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from telephony.models import CallRecord, DialRoute
from tests.tickets.factories import SmsSettingsFactory, TechnicianFactory, TicketLineFactory
from tickets.models import TicketCall, TicketMessage
from tickets.services import calls

pytestmark = pytest.mark.django_db


@pytest.fixture
def line(settings, tmp_path):
    settings.TICKETS_RECORDING_DIR = tmp_path / "recordings"
    return TicketLineFactory(wrap=False, rounds=2, ring_seconds=20)


def tech(line, position, **kwargs):
    kwargs.setdefault("internal", f"55522{position:02d}")
    kwargs.setdefault("mobile", "")
    return TechnicianFactory(line=line, position=position, name=f"T{position}", **kwargs)


def open_call(line, uniqueid="1765000000.1"):
    opened = calls.ticket_call_open(
        server_id=line.server_id, uniqueid=uniqueid, line_id=line.pk, caller="0347261928", called=line.number
    )
    return TicketCall.objects.get(pk=opened.call_id)


def hops_of(call, *statuses):
    """Run ticket-hop as the dialplan would, each hop ending with the next status; the NextHops."""
    out = [calls.ticket_hop_next(call_id=call.pk, uniqueid=call.uniqueid)]
    for status in statuses:
        out.append(calls.ticket_hop_next(call_id=call.pk, uniqueid=call.uniqueid, dial_status=status))
    return out


# -- the hunt order -----------------------------------------------------------------------------


def test_the_hunt_starts_at_the_one_in_charge_and_wraps_to_the_first(line):
    t1, t2, t3 = tech(line, 1), tech(line, 2), tech(line, 3)
    line.in_charge = t2
    assert calls.hunt_order(line=line) == [t2, t3]
    line.wrap = True
    assert calls.hunt_order(line=line) == [t2, t3, t1]
    line.in_charge = None
    assert calls.hunt_order(line=line) == [t1, t2, t3]


def test_an_inactive_one_in_charge_hands_over_to_the_next_active_after_it(line):
    t1, t2, t4 = tech(line, 1), tech(line, 2, active=False), tech(line, 4)
    tech(line, 3, active=False)
    line.in_charge, line.wrap = t2, True
    assert calls.hunt_order(line=line) == [t4, t1]


def test_a_wrapping_hunt_goes_round_the_list_rounds_times(line):
    t1, t2 = tech(line, 1), tech(line, 2)
    line.wrap, line.rounds = True, 2
    line.save()
    call = open_call(line)
    nexts = hops_of(call, "NOANSWER", "NOANSWER", "NOANSWER", "BUSY")
    assert [n.ticket for n in nexts] == [1, 2, 3, 4, None]
    assert nexts[-1] == calls.NextHop()
    assert [h.technician_id for h in call.hops.order_by("sequence")] == [t1.pk, t2.pk, t1.pk, t2.pk]
    assert list(call.hops.order_by("sequence").values_list("dial_status", flat=True)) == [
        "NOANSWER",
        "NOANSWER",
        "NOANSWER",
        "BUSY",
    ]


# -- a hop ---------------------------------------------------------------------------------------


def test_a_hop_rings_the_internal_phone_and_the_mobile_together(line):
    DialRoute.objects.update_or_create(
        server=line.server, name="mobiles", defaults={"template": "PJSIP/{number}@carrier"}
    )
    line.route = "mobiles"
    line.save()
    tech(line, 1, internal="PJSIP/732", mobile="+393471234567")
    call = open_call(line)
    nxt = calls.ticket_hop_next(call_id=call.pk, uniqueid=call.uniqueid)
    assert (nxt.dial, nxt.ring_seconds, nxt.ticket) == ("PJSIP/732&PJSIP/+393471234567@carrier", 20, 1)
    call.refresh_from_db()
    assert call.state == TicketCall.State.HUNTING and call.confirmed_at is not None
    hop = call.hops.get()
    assert (hop.called, hop.technician_name, hop.sequence, hop.ended_at) == ("PJSIP/732", "T1", 1, None)


def test_a_technician_with_nothing_dialable_is_closed_at_once_and_the_hunt_goes_on(line):
    tech(line, 1, internal="5552201")  # through the route "nowhere", which the server lacks
    t2 = tech(line, 2, internal="Local/5552203@phones")
    line.route = "nowhere"
    line.save()
    call = open_call(line)
    nxt = calls.ticket_hop_next(call_id=call.pk, uniqueid=call.uniqueid)
    assert (nxt.dial, nxt.ticket) == ("Local/5552203@phones", 2)
    first, second = call.hops.order_by("sequence")
    assert (first.ticket, first.dial_status, first.ended_at is not None) == (1, calls.UNDIALABLE, True)
    assert second.technician_id == t2.pk
    call.refresh_from_db()  # recorded from the first hop dialed
    assert call.recording.endswith(f"/ticket-{line.pk}-2.wav") and nxt.recording.endswith(call.recording)


def test_the_recording_is_named_after_the_first_ticket_and_started_once(line, settings):
    tech(line, 1), tech(line, 2)
    line.next_ticket = 100
    line.save()
    call = open_call(line)
    first, second = hops_of(call, "NOANSWER")[:2]
    call.refresh_from_db()
    now = timezone.localtime(timezone.now(), line.company.tzinfo)
    assert call.recording == f"{line.company.slug}/{now:%Y}/{now:%m}/ticket-{line.pk}-100.wav"
    assert first.recording == str(settings.TICKETS_RECORDING_DIR / call.recording)
    assert (settings.TICKETS_RECORDING_DIR / call.recording).parent.is_dir()
    assert second.recording == "" and second.ticket == 101


def test_a_line_that_does_not_record_gives_no_recording(line):
    line.record = False
    line.save()
    tech(line, 1)
    call = open_call(line)
    assert calls.ticket_hop_next(call_id=call.pk, uniqueid=call.uniqueid).recording == ""
    call.refresh_from_db()
    assert (call.recording, call.recording_note) == ("", "")


def test_a_hop_asked_from_another_channel_is_refused(line):
    tech(line, 1)
    call = open_call(line)
    with pytest.raises(ValueError, match="not on channel"):
        calls.ticket_hop_next(call_id=call.pk, uniqueid="1765000000.99")
    assert not call.hops.exists()


def test_opening_twice_on_one_channel_opens_one_call(line):
    first, second = open_call(line), open_call(line)
    assert first == second
    record = CallRecord.objects.get(uniqueid=first.uniqueid)
    assert (record.app, record.app_ref, record.company_id) == ("tickets", str(first.pk), line.company_id)


def test_the_announcement_is_the_sound_or_the_uploaded_file_without_its_extension(line, settings, tmp_path):
    assert (
        calls.ticket_call_open(
            server_id=line.server_id, uniqueid="1765000000.2", line_id=line.pk, caller="", called=line.number
        ).announcement
        == "hello-world"
    )
    settings.MEDIA_ROOT = tmp_path / "media"
    line.announcement_file = SimpleUploadedFile("emergency.wav", b"RIFF")
    line.confirm_digit, line.confirm_seconds = "#", 8
    line.save()
    opened = calls.ticket_call_open(
        server_id=line.server_id, uniqueid="1765000000.3", line_id=line.pk, caller="", called=line.number
    )
    assert opened.announcement == str(tmp_path / "media" / "tickets" / "announcements" / "emergency")
    assert (opened.confirm_digit, opened.confirm_seconds) == ("#", 8)


def test_an_unknown_or_inactive_line_is_not_found(line):
    assert calls.ticket_line_for(server_id=line.server_id, did=line.number) == line.pk
    assert calls.ticket_line_for(server_id=line.server_id, did="5550000") is None
    line.active = False
    line.save()
    assert calls.ticket_line_for(server_id=line.server_id, did=line.number) is None


# -- the end -------------------------------------------------------------------------------------


def test_the_end_closes_the_last_hop_and_writes_the_messages_once(line):
    SmsSettingsFactory(company=line.company)
    tech(line, 1, mobile="5552203")
    t2 = tech(line, 2, mobile="5552204")
    call = open_call(line)
    hops_of(call, "NOANSWER")
    written = calls.ticket_call_end(call_id=call.pk, stage=calls.STAGE_HUNT, dial_status="ANSWER")
    assert set(written) == {"sms", "im"}
    call.refresh_from_db()
    assert (call.state, call.answered_by_id, call.note) == ("answered", t2.pk, "answered by T2")
    first, last = call.hops.order_by("sequence")
    assert (first.last, first.answered, last.last, last.answered, last.dial_status) == (
        False,
        False,
        True,
        True,
        "ANSWER",
    )
    im = TicketMessage.objects.get(pk=written["im"])
    assert (im.to, im.technician_id, im.hop_id) == ("pjsip:5552202", t2.pk, last.pk)
    # the caller leg's CallEnded (twice) and a repeated UserEvent change nothing
    assert calls.ticket_call_end(call_id=call.pk) == {}
    assert calls.ticket_call_end(call_id=call.pk) == {}
    assert calls.ticket_call_end(call_id=call.pk, stage=calls.STAGE_NOBODY, dial_status="NOANSWER") == {}
    call.refresh_from_db()
    assert call.state == "answered" and TicketMessage.objects.filter(call=call).count() == 2


def test_a_report_from_another_channel_ends_nothing(line):
    tech(line, 1)
    call = open_call(line)
    hops_of(call)
    assert calls.ticket_call_end(call_id=call.pk, uniqueid="1765000000.99", stage=calls.STAGE_NOBODY) == {}
    call.refresh_from_db()
    assert call.state == TicketCall.State.HUNTING and call.ended_at is None
    assert calls.ticket_call_end(call_id=call.pk, uniqueid=call.uniqueid, stage=calls.STAGE_HUNT) != {}


def test_the_end_of_a_hunt_over_keeps_the_last_hops_dialstatus(line):
    tech(line, 1)
    call = open_call(line)
    hops_of(call, "NOANSWER")  # the second ticket-hop finds the hunt over
    calls.ticket_call_end(call_id=call.pk, stage=calls.STAGE_NOBODY, dial_status="NOANSWER")
    call.refresh_from_db()
    hop = call.hops.get()
    assert (call.state, call.note) == ("nobody", "nobody answered in 1 hop(s)")
    assert (hop.dial_status, hop.last, hop.answered) == ("NOANSWER", True, False)


def test_the_call_ended_before_the_user_event_tells_the_answer_from_the_bridge(line):
    t1 = tech(line, 1)
    call = open_call(line)
    hops_of(call)
    ended = timezone.now() - dt.timedelta(seconds=3)
    CallRecord.objects.filter(uniqueid=call.uniqueid).update(bridged_at=ended, ended_at=ended)
    assert calls.ticket_calls_orphaned(server_id=line.server_id) == [call.pk]
    assert set(calls.ticket_call_end(call_id=call.pk)) == {"im"}
    # the UserEvent, late, changes nothing
    assert calls.ticket_call_end(call_id=call.pk, stage=calls.STAGE_HUNT, dial_status="CANCEL") == {}
    call.refresh_from_db()
    hop = call.hops.get()
    assert (call.state, call.answered_by_id, call.ended_at) == ("answered", t1.pk, ended)
    assert (hop.answered, hop.last, hop.dial_status) == (True, True, "ANSWER")
    assert calls.ticket_calls_orphaned(server_id=line.server_id) == []


@pytest.mark.parametrize(
    ("stage", "state", "note"),
    [
        (calls.STAGE_ANNOUNCE, "abandoned", "the caller hung up before confirming"),
        (calls.STAGE_CONFIRM, "abandoned", "the caller hung up before confirming"),
        (
            calls.STAGE_UNCONFIRMED,
            "unconfirmed",
            "not confirmed: the caller keyed another digit or nothing, twice",
        ),
    ],
)
def test_a_call_ended_before_the_hunt(line, stage, state, note):
    tech(line, 1)
    call = open_call(line)
    assert calls.ticket_call_end(call_id=call.pk, stage=stage) == {}
    call.refresh_from_db()
    assert (call.state, call.note, call.hops.count()) == (state, note, 0)
    assert not TicketMessage.objects.filter(call=call).exists()


def test_the_caller_giving_up_mid_hunt_leaves_the_hop_cancelled(line):
    t1 = tech(line, 1)
    call = open_call(line)
    hops_of(call)
    calls.ticket_call_end(call_id=call.pk, stage=calls.STAGE_HUNT, dial_status="CANCEL")
    call.refresh_from_db()
    assert (call.state, call.note) == ("abandoned", "the caller hung up while T1 was rung")
    assert call.hops.get().dial_status == "CANCEL"
    assert TicketMessage.objects.get(call=call, channel="im").technician_id == t1.pk


# -- the IM --------------------------------------------------------------------------------------


def test_an_im_is_claimed_by_one_sender_and_its_answer_kept(line):
    tech(line, 1)
    call = open_call(line)
    hops_of(call)
    im_id = calls.ticket_call_end(call_id=call.pk, stage=calls.STAGE_HUNT, dial_status="CANCEL")["im"]
    assert calls.ticket_ims_pending(server_id=line.server_id) == [im_id]
    claimed = calls.ticket_im_claim(message_id=im_id)
    assert (claimed.to, claimed.message_id) == ("pjsip:5552201", im_id)
    assert calls.ticket_im_claim(message_id=im_id) is None  # claimed: nobody else sends it
    calls.ticket_im_result(message_id=im_id, error="PBX gone", retry=True)
    assert calls.ticket_im_claim(message_id=im_id) is not None  # tried again at the next start
    calls.ticket_im_result(message_id=im_id, error="Message technology not found.")
    im = TicketMessage.objects.get(pk=im_id)
    assert (im.state, im.last_error, im.attempts) == ("failed", "Message technology not found.", 2)
    assert calls.ticket_im_claim(message_id=im_id) is None
    assert calls.ticket_ims_pending(server_id=line.server_id) == []
