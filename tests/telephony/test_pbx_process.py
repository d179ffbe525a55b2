"""End to end: the real pbx process and facade, over TCP, against pbxsim running the shipped contract."""

import asyncio
import io
import threading

import pytest
from django.core.management import call_command

from pbxsim.harness import free_port
from telephony.agi import AgiCall
from telephony.ami import AmiConnectionLost, AmiError
from telephony.facade import PbxFacade
from telephony.models import CallRecord, PbxServer
from telephony.process import APP_THREADS, PbxProcess
from telephony.services import calls
from telephony.services.originate import OriginateAlreadyClaimed
from telephony.services.servers import ami_source
from telephony.testing import ListeningApp, TcpProxy, pbx_process, wait_for
from tests.factories import CompanyFactory
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def state_of(server):
    return PbxServer.objects.get(pk=server.pk).state


def finished(uniqueid):
    return CallRecord.objects.filter(uniqueid=uniqueid, ended_at__isnull=False).first()


def bridged(*uniqueids):
    legs = list(
        CallRecord.objects.filter(uniqueid__in=uniqueids, bridged_at__isnull=False).order_by("uniqueid")
    )
    return legs if len(legs) == len(uniqueids) else None


def test_originated_call_is_recorded_from_its_events(server, facade):
    company = CompanyFactory()
    with pbx_process([server]):
        wait_for(lambda: state_of(server) == "connected", what="the AMI login")
        outcome = facade.originate(
            server=server,
            channel_id="t-answer",
            number="5551001",
            context="platform-hold",
            company=company,
            app="tests",
            app_ref="case:1",
            wait=True,
        )
        assert (outcome.outcome, outcome.reason, outcome.uniqueid) == ("answered", 4, "t-answer")
        record = wait_for(lambda: finished("t-answer"), what="the call record to end")
    # 5551001 rings 1 s, answers, hangs up 2 s later: PBX time, whatever the time scale.
    assert (record.disposition, record.billsec, record.duration) == ("ANSWERED", 2, 3)
    assert (record.company, record.app, record.app_ref, record.callee) == (
        company,
        "tests",
        "case:1",
        "5551001",
    )
    assert record.hangup_cause == 16
    assert CallRecord.objects.count() == 1  # the ;2 half is no leg


@pytest.mark.parametrize(
    ("number", "outcome", "disposition"), [("5551002", "busy", "BUSY"), ("5551004", "congestion", "FAILED")]
)
def test_unanswered_outcomes(server, facade, number, outcome, disposition):
    with pbx_process([server]):
        wait_for(lambda: state_of(server) == "connected")
        result = facade.originate(
            server=server, channel_id=f"t-{number}", number=number, context="platform-hold", wait=True
        )
        assert result.outcome == outcome
        record = wait_for(lambda: finished(f"t-{number}"))
    assert (record.disposition, record.billsec) == (disposition, 0)


def test_no_answer_after_the_originate_timeout(server, facade):
    with pbx_process([server]):
        wait_for(lambda: state_of(server) == "connected")
        result = facade.originate(
            server=server,
            channel_id="t-noanswer",
            number="5551003",
            context="platform-hold",
            timeout=10,
            wait=True,
        )
        assert (result.outcome, result.reason) == ("no_answer", 3)
        record = wait_for(lambda: finished("t-noanswer"))
    assert (record.disposition, record.hangup_cause) == ("NO ANSWER", 19)


def test_nobody_is_rung_twice_for_one_channel_id(server, facade):
    facade.originate(server=server, channel_id="t-once", number="5551005", context="platform-hold")
    with pytest.raises(OriginateAlreadyClaimed):
        facade.originate(server=server, channel_id="t-once", number="5551005", context="platform-hold")
    channels = [c for c in facade.live_channels(server=server) if c["Uniqueid"] == "t-once"]
    assert len(channels) == 1
    facade.hangup(server=server, channel=channels[0]["Channel"])


def test_events_nobody_reads_are_dropped_and_the_fold_and_the_apps_share_one_dict(server, facade):
    """The lean event path: pbxsim sends every event (read = all, no eventfilter); those neither
    the fold nor an app reads (VarSet, DialState...) are dropped unparsed, and a Hangup, read by
    both, is one dict, the same object queued for the fold and handed to the app."""
    listener = ListeningApp(ami_events={"Hangup", "Newexten"})
    with pbx_process([server], apps=[listener]) as runner:
        wait_for(lambda: state_of(server) == "connected", what="the AMI login")
        link = runner.link(server)
        queued, put = [], link.events.put_nowait
        link.events.put_nowait = lambda event: (queued.append(event), put(event))
        facade.originate(
            server=server, channel_id="t-lean", number="5551001", context="platform-hold", wait=True
        )
        wait_for(lambda: finished("t-lean"), what="the call record to end")
        hangups = wait_for(
            lambda: [e for e in listener.events if e["Event"] == "Hangup" and e["Uniqueid"] == "t-lean"],
            what="the app's Hangup",
        )
        dropped = link.client.events_dropped
    assert dropped > 0
    assert {e["Event"] for e in listener.events} == {"Hangup", "Newexten"}
    assert {e["Event"] for e in queued} <= calls.FOLDED_EVENTS
    assert type(hangups[0]) is dict and "_received" in hangups[0]
    assert any(event is hangups[0] for event in queued)


def test_actions_on_a_live_call(server, facade):
    """Setvar/Getvar, Redirect, AbsoluteTimeout, MessageSend and Hangup through the facade."""
    listener = ListeningApp(user_events={"PlatformHold"})
    held = listener.events
    with pbx_process([server], apps=[listener]):
        wait_for(lambda: state_of(server) == "connected")
        facade.originate(
            server=server,
            channel_id="t-live",
            number="5551005",
            context="platform-hold",
            variables={"PLATFORM_CALL": "case:7"},
        )
        event = wait_for(lambda: held and held[0], what="the PlatformHold UserEvent")
        assert event["Call"] == "case:7"
        channel = event["Channel"]
        facade.set_variable(server=server, channel=channel, name="NOTE", value="vip")
        assert facade.get_variable(server=server, channel=channel, name="NOTE") == "vip"
        facade.send_message(server=server, to="pjsip:tech1", body="Ticket 42", sender="platform")
        with pytest.raises(ValueError, match="line break"):  # no smuggling a second action in
            facade.send_message(server=server, to="pjsip:tech1", body="hi\r\n\r\nAction: Originate")
        facade.absolute_timeout(server=server, channel=channel, seconds=1)
        record = wait_for(lambda: finished("t-live"), what="the AbsoluteTimeout to end the call")
        assert record.disposition == "ANSWERED"
        with pytest.raises(AmiError, match="No such channel"):
            facade.hangup(server=server, channel=channel)


def test_bridge_two_held_parties(server, facade):
    listener = ListeningApp(user_events={"PlatformHold"})
    with pbx_process([server], apps=[listener]):
        wait_for(lambda: state_of(server) == "connected")
        for n in ("a", "b"):
            facade.originate(
                server=server,
                channel_id=f"t-bridge-{n}",
                number="5551005",
                context="platform-hold",
                variables={"PLATFORM_CALL": n},
            )
        wait_for(lambda: len(listener.events) == 2)
        held = {event["Call"]: event["Channel"] for event in listener.events}
        facade.bridge(server=server, channel1=held["a"], channel2=held["b"])
        a, b = wait_for(lambda: bridged("t-bridge-a", "t-bridge-b"), what="both legs to be bridged")
        assert a.bridge_id and a.bridge_id == b.bridge_id
        facade.hangup(server=server, channel=held["a"])
        # Nobody hangs b up: out of the bridge, it goes on in its dialplan, which ends it.
        wait_for(lambda: finished("t-bridge-a") and finished("t-bridge-b"), what="both legs to end")
    a, b = finished("t-bridge-a"), finished("t-bridge-b")
    assert (a.disposition, a.hangup_cause, b.disposition, b.hangup_cause) == ("ANSWERED", 16, "ANSWERED", 16)
    assert b.bridge_id == a.bridge_id  # the bridge it was last in
    assert b.ended_at >= a.ended_at


def test_pbx_that_disappears_mid_call_is_reconciled(sim, facade):
    proxy = TcpProxy("127.0.0.1", sim.port).start()
    server = PbxServerFactory(ami_port=proxy.port, agi_bind_port=sim.agi_port)
    direct = PbxServerFactory(ami_port=sim.port, agi_bind_port=free_port())
    try:
        with pbx_process([server]) as runner:
            wait_for(lambda: state_of(server) == "connected")
            facade.originate(server=direct, channel_id="t-lost", number="5551001", context="platform-hold")
            # The pbx process sees the call start...
            wait_for(
                lambda: (
                    CallRecord.objects.filter(source=ami_source(server), uniqueid="t-lost")
                    .exclude(channel="")
                    .exists()
                ),
                what="the call to be seen",
            )
            proxy.cut()
            wait_for(lambda: state_of(server) == "down", what="the drop to be noticed")
            # ...which ends (3 s of PBX time) while it is cut off.
            wait_for(
                lambda: not [c for c in facade.live_channels(server=direct) if c["Uniqueid"] == "t-lost"],
                what="the call to end on the PBX",
            )
            proxy.restore()
            wait_for(lambda: state_of(server) == "connected", timeout=20, what="the reconnect")
            record = wait_for(
                lambda: CallRecord.objects.filter(
                    source=ami_source(server), uniqueid="t-lost", ended_at__isnull=False
                ).first(),
                what="the reconcile",
            )
            assert runner.link(server).client.connected.is_set()
        assert "unreachable" in record.hangup_cause_text
    finally:
        proxy.close()


def test_wrong_secret_is_retried_with_backoff_and_reported(sim):
    server = PbxServerFactory(ami_port=sim.port, ami_secret="wrong")
    with pbx_process([server]):
        record = wait_for(
            lambda: PbxServer.objects.filter(pk=server.pk, last_error__contains="login refused").first(),
            what="the refused login",
            timeout=15,
        )
        assert record.state in ("down", "connecting")
        out = io.StringIO()
        with pytest.raises(SystemExit) as exit_status:
            call_command("pbx", "--check", stdout=out)
        assert exit_status.value.code == 1
        assert f"{server.name}: DOWN" in out.getvalue()
        assert "login refused" in out.getvalue()


def test_an_originate_the_pbx_never_got_is_sent_by_the_retry(sim):
    """The PBX is unreachable: the claim stays unsent, and the retry, once it is back, sends it."""
    proxy = TcpProxy("127.0.0.1", sim.port).start()
    server = PbxServerFactory(ami_port=proxy.port, agi_bind_port=sim.agi_port)
    proxy.cut()
    facade = PbxFacade()
    call = {"server": server, "channel_id": "t-down", "number": "5551005", "context": "platform-hold"}
    try:
        with pytest.raises(AmiConnectionLost):
            facade.originate(**call)
        record = CallRecord.objects.get(uniqueid="t-down")
        assert (record.state, record.ended_at) == ("claimed", None)
        proxy.restore()
        facade.originate(**call)  # the task's retry: same ChannelId
        assert CallRecord.objects.get(uniqueid="t-down").state == "sent"
        with pytest.raises(OriginateAlreadyClaimed):  # and never a third time
            facade.originate(**call)
        live = [c for c in facade.live_channels(server=server) if c["Uniqueid"] == "t-down"]
        assert len(live) == 1
        facade.hangup(server=server, channel=live[0]["Channel"])
    finally:
        facade.close()
        proxy.close()


def test_fastagi_script_runs_and_closes(server, facade):
    """An inbound call in [platform-agi] reaches a registered script through FastAGI."""
    seen = {}

    async def echo_script(call: AgiCall):
        await call.answer()
        seen["digits"] = await call.get_data("beep", 3000, 4)
        seen["script_var"] = await call.get_variable("PLATFORM_SCRIPT")
        await call.set_variable("RESULT", "ok")

    with pbx_process([server], apps=[ListeningApp(scripts={"echo": echo_script})]):
        wait_for(lambda: state_of(server) == "connected")
        facade.originate(
            server=server,
            channel_id="t-agi",
            channel="Local/5550100@platform-agi",
            application="Wait",
            data="5",
            variables={"PLATFORM_SCRIPT": "echo"},
        )
        wait_for(lambda: "script_var" in seen, what="the AGI script")
        wait_for(lambda: finished("t-agi"), what="the call to end after the script")
    assert seen["script_var"] == "echo"


def test_a_number_that_is_no_number_is_refused_before_anything_is_claimed(server, facade):
    with pytest.raises(ValueError, match="not a number"):
        facade.originate(server=server, channel_id="t-bad", number="5551001@other", context="platform-hold")
    with pytest.raises(ValueError, match="no dial route 'mobile'"):
        facade.originate(
            server=server, channel_id="t-bad", number="5551001", route="mobile", context="platform-hold"
        )
    assert not CallRecord.objects.filter(uniqueid="t-bad").exists()


def test_a_read_never_waits_behind_writes_holding_every_database_thread():
    """A caller's card and PIN check (ctx.read) while every write thread waits on a lock (SQLite's
    write lock, a row lock): the read has threads of its own."""
    process = PbxProcess(apps=[])
    held = threading.Event()

    def blocked_write():
        held.wait(10)

    async def scenario():
        writes = [asyncio.ensure_future(process.db(blocked_write)) for _ in range(APP_THREADS)]
        try:
            return await asyncio.wait_for(process.read(lambda: "read"), 5)
        finally:
            held.set()
            await asyncio.gather(*writes)

    try:
        assert asyncio.run(scenario()) == "read"
    finally:
        process.app_threads.shutdown()
        process.read_threads.shutdown()
        process.lease_threads.shutdown()
