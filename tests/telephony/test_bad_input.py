"""What the telephony layer does with a misbehaving PBX or AGI client: log, answer, carry on."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pbxsim.harness import free_port, running_pbxsim
from telephony.agi import AgiCall, make_agi_handler
from telephony.models import CallRecord, PbxServer
from telephony.testing import ListeningApp, contract_dialplans, database_url, pbx_process, wait_for
from tests.telephony.factories import PbxServerFactory

PROJECT_DIR = Path(__file__).resolve().parents[2]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 10))


async def agi_server(scripts):
    server = await asyncio.start_server(make_agi_handler(None, scripts), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


AGI_BLOCK = b"agi_network: yes\nagi_network_script: {script}\nagi_channel: PJSIP/a-1\nagi_uniqueid: u1\n\n"


def test_agi_client_that_leaves_early_or_asks_for_nothing_known():
    ran = []

    async def script(call: AgiCall):
        ran.append(call.uniqueid)
        result = await call.command("ANSWER")
        ran.append(result.line)

    async def scenario():
        server, port = await agi_server({"known": script})
        # 1. leaves in the middle of its agi_* block
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_network: yes\nagi_chan")
        writer.close()
        # 2. asks for a script nobody registered: the dialplan is told (for its fallback), then closed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(AGI_BLOCK.replace(b"{script}", b"unknown"))
        assert await reader.readline() == b'SET VARIABLE PLATFORM_AGI_RESULT "unavailable"\n'
        writer.write(b"200 result=1\n")
        assert await reader.read() == b""
        # 3. hangs up while the script waits for an answer
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(AGI_BLOCK.replace(b"{script}", b"known"))
        assert await reader.readline() == b"ANSWER\n"
        writer.close()
        # 4. and a well-behaved one is still served
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(AGI_BLOCK.replace(b"{script}", b"known"))
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        assert await reader.read() == b""  # closed once the script ended
        server.close()

    run(scenario())
    assert ran == ["u1", "u1", "200 result=0"]


def test_agi_hangup_line_then_dead_channel():
    """After the caller hangs up Asterisk sends HANGUP, then 511 to any command but GET VARIABLE."""
    outcome = {}

    async def script(call: AgiCall):
        outcome["digits"] = (await call.command("GET DATA beep 3000 4")).result
        outcome["var"] = await call.get_variable("CALLERID(num)")
        outcome["hungup"] = call.hungup  # told by the HANGUP line
        try:
            await call.stream_file("goodbye")
        except Exception as exc:
            outcome["after"] = type(exc).__name__

    async def scenario():
        server, port = await agi_server({"s": script})
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(AGI_BLOCK.replace(b"{script}", b"s"))
        await reader.readline()
        writer.write(b"200 result=-1\n")
        await reader.readline()
        writer.write(b"HANGUP\n200 result=1 (5551006)\n")
        await reader.readline()
        writer.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
        assert await reader.read() == b""
        server.close()

    run(scenario())
    assert outcome == {"digits": "-1", "hungup": True, "var": "5551006", "after": "AgiHangup"}


@pytest.mark.django_db(transaction=True)
def test_malformed_frames_and_unknown_events_from_the_pbx():
    """A PBX (here a raw TCP peer) that sends garbage and events nobody knows: the valid ones still count."""

    async def fake_pbx(reader, writer):
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        frame = await reader.readuntil(b"\r\n\r\n")
        action_id = next(
            line.split(b": ", 1)[1] for line in frame.split(b"\r\n") if line.startswith(b"ActionID")
        )
        writer.write(
            b"Response: Success\r\nActionID: " + action_id + b"\r\nMessage: Authentication accepted\r\n\r\n"
        )
        writer.write(b"\x00\xff\xfe garbage without a colon\r\n\r\n")
        writer.write(b"Event: SomethingFromTheFuture\r\nFoo: bar\r\n\r\n")
        writer.write(
            b"Event: Newchannel\r\nChannel: PJSIP/trunk-1\r\nUniqueid: odd-1\r\nLinkedid: odd-1\r\n"
            b"Exten: 5551001\r\nCallerIDNum: 5550000\r\nTimestamp: 1795422307.0\r\n\r\n"
        )
        writer.write(
            b"Event: Hangup\r\nChannel: PJSIP/trunk-1\r\nUniqueid: odd-1\r\nCause: 16\r\n"
            b"Timestamp: 1795422309.5\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(30)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(fake_pbx, "127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    listener = ListeningApp(ami_events={"*"})
    pbx = PbxServerFactory(ami_port=server.sockets[0].getsockname()[1], agi_bind_port=free_port())
    try:
        with pbx_process([pbx], apps=[listener]):
            record = wait_for(
                lambda: CallRecord.objects.filter(uniqueid="odd-1", ended_at__isnull=False).first()
            )
            # The state is written by the link, the record by the fold: either may be first.
            wait_for(lambda: PbxServer.objects.get(pk=pbx.pk).state == "connected", what="connected")
    finally:
        loop.call_soon_threadsafe(loop.stop)
    assert "SomethingFromTheFuture" in [event.get("Event") for event in listener.events]
    assert (record.duration, record.disposition, record.callee) == (2, "NO ANSWER", "5551001")


@pytest.mark.django_db(transaction=True)
def test_pbx_command_runs_and_stops_cleanly_on_sigterm(tmp_path):
    agi_port = free_port()
    users = Path(__file__).with_name("manager.conf")
    with running_pbxsim(
        dialplans=contract_dialplans(tmp_path, agi_port), manager_users=users, time_scale=20
    ) as sim:
        server = PbxServerFactory(ami_port=sim.port, agi_bind_port=agi_port)
        process = subprocess.Popen(
            [sys.executable, "manage.py", "pbx"],
            cwd=PROJECT_DIR,
            env={**os.environ, "DEBUG": "1", "DATABASE_URL": database_url()},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert "stopping" in output
    server.refresh_from_db()
    assert (server.state, server.last_error) == ("down", "the pbx process stopped")
    assert "platform-secret" not in output


@pytest.mark.django_db(transaction=True)
def test_fastagi_port_in_use_leaves_ami_working(tmp_path, caplog):
    users = Path(__file__).with_name("manager.conf")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        agi_port = taken.getsockname()[1]
        with running_pbxsim(dialplans=contract_dialplans(tmp_path, agi_port), manager_users=users) as sim:
            server = PbxServerFactory(ami_port=sim.port, agi_bind_port=agi_port)
            with pbx_process([server]):
                wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected")
    assert f"FastAGI for {server.name} cannot listen" in caplog.text
