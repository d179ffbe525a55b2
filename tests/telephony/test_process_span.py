"""A call that spans a takeover or a reconnect: the session that folds its end never saw it start.
The new session's CoreShowChannels lists it live, and what the listing says (channel, Up, the
parties, its age) goes into its record; its Cdr at the end times the answer. Real pbx code, pbxsim."""

import pytest

from pbxsim.harness import free_port
from telephony.models import CallRecord, PbxServer
from telephony.services.servers import ami_source
from telephony.testing import ListeningApp, TcpProxy, pbx_process, wait_for
from telephony.transitions import LOST_TEXT
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db(transaction=True)

SPAN = "5559001"  # [span-test]: answers after 1 s, talks 200 s (10 s here), hangs up


def connected(server):
    return PbxServer.objects.get(pk=server.pk).state == "connected"


@pytest.mark.parametrize("how", ["takeover", "reconnect"])
def test_an_answered_call_spanning_sessions_is_recorded_whole(sim, facade, how):
    proxy = TcpProxy("127.0.0.1", sim.port).start()
    server = PbxServerFactory(ami_port=proxy.port, agi_bind_port=sim.agi_port)
    # Another AMI user places the call, as the worker's facade does: no record of it under `server`.
    direct = PbxServerFactory(ami_port=sim.port, agi_bind_port=free_port())
    cdrs = ListeningApp(ami_events={"Cdr"})
    source = ami_source(server)

    def place_and_wait_for_the_answer():
        facade.originate(
            server=direct, channel_id="t-span", channel=f"Local/{SPAN}@span-test", context="platform-hold"
        )
        wait_for(
            lambda: [
                c
                for c in facade.live_channels(server=direct)
                if c["Uniqueid"] == "t-span" and c["ChannelState"] == "6"
            ],
            what="the call to be answered",
        )

    try:
        if how == "takeover":
            place_and_wait_for_the_answer()  # while no process owns the server (its owner died)
        with pbx_process([server], apps=[cdrs]):
            wait_for(lambda: connected(server), what="the AMI login")
            if how == "reconnect":
                proxy.cut()
                wait_for(lambda: not connected(server), what="the drop to be noticed")
                place_and_wait_for_the_answer()
                proxy.restore()
                wait_for(lambda: connected(server), timeout=20, what="the reconnect")
            listed = wait_for(
                lambda: CallRecord.objects.filter(source=source, uniqueid="t-span", state="answered").first(),
                what="the listing to record the live call",
            )
            assert listed.channel.startswith(f"Local/{SPAN}@span-test-") and listed.callee == SPAN
            record = wait_for(
                lambda: CallRecord.objects.filter(source=source, uniqueid="t-span", state="ended").first(),
                timeout=20,
                what="the call to end",
            )
            cdr = wait_for(lambda: [e for e in cdrs.events if e.get("UniqueID") == "t-span"], what="its Cdr")[
                -1
            ]
    finally:
        proxy.close()
    assert record.hangup_cause_text != LOST_TEXT and record.hangup_cause == 16
    assert (record.disposition, record.channel, record.callee) == ("ANSWERED", listed.channel, SPAN)
    assert record.answered_at is not None and record.started_at <= record.answered_at <= listed.answered_at
    assert record.billsec == int(cdr["BillableSeconds"]) >= 199  # 200 s of talk, cut to the second
    assert record.duration == int(cdr["Duration"])
