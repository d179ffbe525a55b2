"""`make run`'s ticket line demo: demo_data adds the line, its two technicians and the console SMS
settings; the demo caller 5551050 dials the line and presses 1, the technician in charge never answers,
the next one does and hangs up; two tickets in the log, the last one _END, a recording, an IM and an SMS."""

import pytest
from django.core.management import call_command

from telephony.facade import PbxFacade
from telephony.models import PbxServer
from telephony.testing import pbx_process, wait_for
from tests.demo import DEMO_PHONES, running_demo_pbx
from tests.factories import CompanyFactory
from tickets import demo
from tickets.demo import load_demo_tickets
from tickets.models import SmsSettings, TicketCall, TicketLine, TicketMessage
from tickets.pbx import Tickets

SCALE = 10

pytestmark = pytest.mark.django_db


def test_demo_data_adds_the_ticket_line_and_keeps_what_the_company_changed(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("demo_data")
    line = TicketLine.objects.select_related("company", "server", "in_charge").get(number=demo.DID)
    first, second = line.technicians.order_by("position")
    assert (line.company.slug, line.server.name, line.in_charge, line.ring_seconds) == (
        "demo",
        "demo",
        first,
        demo.RING_SECONDS,
    )
    assert [(t.internal, t.mobile) for t in (first, second)] == [(i, m) for _, i, m in demo.TECHNICIANS]
    assert SmsSettings.objects.get(company=line.company).provider == SmsSettings.Provider.CONSOLE
    # the company moves the one in charge and switches its SMS off: a second demo_data keeps both
    TicketLine.objects.filter(pk=line.pk).update(in_charge=second)
    SmsSettings.objects.filter(company=line.company).update(provider=SmsSettings.Provider.NONE)
    call_command("demo_data")
    line.refresh_from_db()
    assert line.in_charge == second and line.technicians.count() == 2
    assert SmsSettings.objects.get(company=line.company).provider == SmsSettings.Provider.NONE
    out = capsys.readouterr().out
    assert f"Gas emergencies {demo.DID}" in out and f"manage.py call {demo.CALLER_PHONE}" in out
    # the demo phones dial the line and route its DID to the ticket script
    phones = DEMO_PHONES.read_text()
    assert f"exten => {demo.CALLER_PHONE},1,Answer()" in phones
    assert f"Dial(Local/{demo.DID}@phones,60,U(demo-ticket-keys))" in phones
    assert (
        f"exten => {demo.DID},1,Set(PLATFORM_SCRIPT=ticket)\n same => n,Goto(platform-agi,${{EXTEN}},1)"
        in phones
    )


def test_a_demo_line_number_another_company_has_is_left_alone(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("demo_data")
    TicketLine.objects.filter(number=demo.DID).update(company=CompanyFactory())
    lines = []
    load_demo_tickets(None, company=CompanyFactory(slug="demo-2"), write=lines.append)
    assert "another company's: no demo line" in lines[0]
    assert TicketLine.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_demo_caller_reaches_the_second_technician(tmp_path, settings):
    settings.TICKETS_RECORDING_DIR = tmp_path / "recordings"
    with running_demo_pbx(tmp_path, time_scale=SCALE) as server:
        company = CompanyFactory(slug="demo")
        load_demo_tickets(None, company=company, write=lambda text: None)
        with pbx_process([server], apps=[Tickets()]):
            wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
            facade = PbxFacade()
            try:
                facade.originate(
                    server=server,
                    channel_id="demo-ticket-caller",
                    number=demo.CALLER_PHONE,
                    context="platform-hold",
                    app="demo",
                )
                call = wait_for(
                    lambda: TicketCall.objects.filter(state__in=TicketCall.ENDED).first(),
                    timeout=30,
                    what="the demo call's end",
                )
                im = wait_for(
                    lambda: TicketMessage.objects.filter(channel="im", state="sent").first(),
                    timeout=10,
                    what="the IM sent",
                )
            finally:
                facade.close()
    first, second = TicketLine.objects.get(number=demo.DID).technicians.order_by("position")
    assert (call.state, call.caller, call.called, call.answered_by) == (
        "answered",
        demo.CALLER_PHONE,
        demo.DID,
        second,
    )
    hops = list(call.hops.order_by("sequence"))
    assert [(h.technician, h.dial_status, h.answered, h.last) for h in hops] == [
        (first, "NOANSWER", False, False),
        (second, "ANSWER", True, True),
    ]
    assert hops[1].ticket == hops[0].ticket + 1
    assert call.recording and (settings.TICKETS_RECORDING_DIR / call.recording).is_file()
    sms = TicketMessage.objects.get(call=call, channel="sms")
    assert (sms.to, im.to, im.hop, sms.hop) == ("+33612345003", "pjsip:5552001", hops[1], hops[1])
    assert f"_Ticket_{hops[1].ticket}_Caller_{demo.CALLER_PHONE}_Called_5552001" in sms.body
