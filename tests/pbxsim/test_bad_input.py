"""What the simulator does with input a real client or AGI server may send it by mistake.

Each test checks the answer Asterisk gives (the traces where they show it,
else Asterisk's manager.c and res_agi.c) and that the simulator then still
serves a new client: bad input from one client must never take the PBX down.
"""

import asyncio
import contextlib

import pytest

from pbxsim.amiwire import open_logged_in
from tests.pbxsim.fastagi import AGI_HOST

EVENT_TIMEOUT = 5.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def assert_serves_new_client(sim):
    assert sim.is_running(), f"the simulator exited with {sim.process.returncode}:\n{sim.log_tail()}"
    connection = await open_logged_in(sim.host, sim.port)
    try:
        pong = await connection.action([("Action", "Ping"), ("ActionID", "alive")])
        assert pong.get("Response") == "Success", pong.lines
        assert pong.get("Ping") == "Pong", pong.lines
    finally:
        await connection.close()


async def wait_event(connection, matches, timeout=EVENT_TIMEOUT):
    """connection.wait_for, failing with the frames seen instead of a bare TimeoutError."""
    try:
        return await connection.wait_for(matches, timeout)
    except TimeoutError:
        seen = "\n".join(" | ".join(frame.lines[:5]) for frame in connection.backlog)
        pytest.fail(f"no matching frame within {timeout} s; unmatched frames:\n{seen}")


def is_event(name, **headers):
    def matches(frame):
        return frame.event == name and all(frame.get(key) == value for key, value in headers.items())

    return matches


async def originate(connection, number, context, call_id):
    response = await connection.action(
        [
            ("Action", "Originate"),
            ("Channel", f"Local/{number}@phones"),
            ("Async", "true"),
            ("ChannelId", f"{call_id}-1"),
            ("OtherChannelId", f"{call_id}-2"),
            ("CallerID", '"Platform" <5550000>'),
            ("Timeout", "30000"),
            ("Context", context),
            ("Exten", "s"),
            ("Priority", "1"),
            ("ActionID", f"originate-{call_id}"),
        ]
    )
    assert response.get("Response") == "Success", response.lines
    answered = await wait_event(connection, is_event("OriginateResponse", ActionID=f"originate-{call_id}"))
    assert answered.get("Response") == "Success", answered.lines
    return answered.get("Channel")


def test_line_without_colon_is_ignored(pbxsim):
    async def scenario():
        connection = await open_logged_in(pbxsim.host, pbxsim.port)
        # Asterisk looks headers up by name; a line that is not `Name: value` matches none.
        await connection.send_raw(b"Action: Ping\r\nthis line has no colon\r\nActionID: nc1\r\n\r\n")
        pong = await connection.read_response("nc1")
        assert (pong.get("Response"), pong.get("Ping")) == ("Success", "Pong"), pong.lines
        # A frame made of such lines has no Action header at all.
        await connection.send_raw(b"no colon here\r\n\r\n")
        error = await wait_event(connection, lambda frame: frame.is_response)
        assert (error.get("Response"), error.get("Message")) == ("Error", "Missing action in request")
        await connection.close()
        await assert_serves_new_client(pbxsim)

    run(scenario())


def test_endless_header_line(pbxsim):
    async def scenario():
        connection = await open_logged_in(pbxsim.host, pbxsim.port)
        # Asterisk keeps 1024 bytes of a line; a longer one spoils its frame, which is answered
        # with an error once it ends, and the session goes on.
        await connection.send_raw(b"Action: Ping\r\nX-Filler: " + b"x" * (1024 * 1024))
        await connection.send_raw(b"\r\n\r\n")
        error = await wait_event(connection, lambda frame: frame.is_response, timeout=10)
        assert (error.get("Response"), error.get("Message")) == (
            "Error",
            "Failed to parse message: line too long",
        ), error.lines
        pong = await connection.action([("Action", "Ping"), ("ActionID", "after-long-line")])
        assert pong.get("Ping") == "Pong", pong.lines
        await connection.close()
        await assert_serves_new_client(pbxsim)

    run(scenario())


def test_binary_garbage(pbxsim):
    async def scenario():
        connection = await open_logged_in(pbxsim.host, pbxsim.port)
        # Every byte value but CR and LF (so one line, shorter than Asterisk's 1024), NUL and
        # invalid UTF-8 included, then the empty line that ends a frame.
        garbage = bytes(value for value in range(256) if value not in (10, 13)) * 3
        await connection.send_raw(garbage + b"\r\n\r\n")
        error = await wait_event(connection, lambda frame: frame.is_response)
        assert (error.get("Response"), error.get("Message")) == ("Error", "Missing action in request")
        pong = await connection.action([("Action", "Ping"), ("ActionID", "after-garbage")])
        assert pong.get("Ping") == "Pong", pong.lines
        await connection.close()
        await assert_serves_new_client(pbxsim)

    run(scenario())


def test_unknown_action(pbxsim):
    async def scenario():
        connection = await open_logged_in(pbxsim.host, pbxsim.port)
        response = await connection.action([("Action", "NoSuchAction"), ("ActionID", "u1")])
        assert response.get("Response") == "Error"
        assert response.get("Message") == (
            "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show available commands."
        )
        event = await wait_event(connection, is_event("RequestBadFormat"))
        assert event.get("RequestType") == "Action: NoSuchAction", event.lines
        await connection.close()
        await assert_serves_new_client(pbxsim)

    run(scenario())


# Originate's answer is in the traces (actions-errors); the others are manager.c's.
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            [("Action", "Originate"), ("Context", "play"), ("Exten", "s"), ("Priority", "1")],
            "Channel not specified",
        ),
        ([("Action", "Hangup")], "No channel specified"),
        (
            [("Action", "Redirect"), ("Context", "park"), ("Exten", "s"), ("Priority", "1")],
            "Channel not specified",
        ),
        ([("Action", "Getvar"), ("Channel", "Local/5551005@phones-00000000;1")], "No variable specified"),
        ([("Action", "Setvar"), ("Channel", "Local/5551005@phones-00000000;1")], "No variable specified"),
    ],
    ids=[
        "originate-no-channel",
        "hangup-no-channel",
        "redirect-no-channel",
        "getvar-no-var",
        "setvar-no-var",
    ],
)
def test_missing_required_header(pbxsim, headers, message):
    async def scenario():
        connection = await open_logged_in(pbxsim.host, pbxsim.port)
        response = await connection.action([*headers, ("ActionID", "m1")])
        assert (response.get("Response"), response.get("Message")) == ("Error", message), response.lines
        # The refused action starts nothing: no OriginateResponse or channel follows.
        with contextlib.suppress(TimeoutError):
            await connection.wait_for(lambda frame: False, timeout=0.3)
        started = [
            frame.lines for frame in connection.backlog if frame.event in ("OriginateResponse", "Newchannel")
        ]
        assert started == []
        await connection.close()
        await assert_serves_new_client(pbxsim)

    run(scenario())


def test_actions_on_a_channel_that_is_gone(pbxsim):
    async def scenario():
        connection = await open_logged_in(pbxsim.host, pbxsim.port)
        # 5551009 answers at once; the ;1 half goes to [done], which hangs up.
        channel = await originate(connection, "5551009", "done", "gone")
        await wait_event(connection, is_event("Hangup", Channel=channel))
        hangup = await connection.action([("Action", "Hangup"), ("Channel", channel), ("ActionID", "g1")])
        assert (hangup.get("Response"), hangup.get("Message")) == ("Error", "No such channel")
        getvar = await connection.action(
            [("Action", "Getvar"), ("Channel", channel), ("Variable", "X"), ("ActionID", "g2")]
        )
        assert (getvar.get("Response"), getvar.get("Message")) == ("Error", "No such channel")
        redirect = await connection.action(
            [
                ("Action", "Redirect"),
                ("Channel", channel),
                ("Context", "park"),
                ("Exten", "s"),
                ("Priority", "1"),
                ("ActionID", "g3"),
            ]
        )
        assert (redirect.get("Response"), redirect.get("Message")) == (
            "Error",
            f"Channel does not exist: {channel}",
        )
        await connection.close()
        await assert_serves_new_client(pbxsim)

    run(scenario())


def test_call_outlives_the_client_that_made_it(pbxsim):
    async def scenario():
        first = await open_logged_in(pbxsim.host, pbxsim.port)
        channel = await originate(first, "5551005", "park", "orphan")
        await wait_event(first, is_event("UserEvent", Channel=channel, UserEvent="Parked"))
        # Vanish without Logoff, as a crashed client does.
        first.writer.transport.abort()

        second = await open_logged_in(pbxsim.host, pbxsim.port)
        await second.send([("Action", "CoreShowChannels"), ("ActionID", "list")])
        listed = []
        while True:
            frame = await wait_event(second, lambda frame: frame.get("ActionID") == "list")
            if frame.event == "CoreShowChannelsComplete":
                break
            if frame.event == "CoreShowChannel":
                listed.append(frame.get("Channel"))
        other_half = channel.replace(";1", ";2")
        assert sorted(listed) == sorted([channel, other_half])
        hangup = await second.action([("Action", "Hangup"), ("Channel", channel), ("ActionID", "h1")])
        assert hangup.get("Response") == "Success", hangup.lines
        hung_up = set()
        while hung_up != {channel, other_half}:
            frame = await wait_event(second, is_event("Hangup"))
            hung_up.add(frame.get("Channel"))
        await second.close()
        await assert_serves_new_client(pbxsim)

    run(scenario())


async def _port_is_free(host, port):
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return True
    writer.close()
    return False


async def _agi_outcome(sim, call_id):
    """Run a call into [agi] and return the AGISTATUS its NoOp printed once the call has ended."""
    connection = await open_logged_in(sim.host, sim.port)
    channel = await originate(connection, "5551005", "agi", call_id)
    noop = await wait_event(connection, is_event("Newexten", Channel=channel, Application="NoOp"), timeout=15)
    await wait_event(connection, is_event("Hangup", Channel=channel), timeout=15)
    await connection.close()
    return noop.get("AppData")


def test_agi_server_refuses_connections(pbxsim):
    async def scenario():
        if not await _port_is_free(AGI_HOST, pbxsim.agi_port):
            pytest.fail(f"something listens on {AGI_HOST}:{pbxsim.agi_port}; this test needs it closed")
        # AGI() fails with AGISTATUS=FAILURE and the dialplan goes on with the next priority.
        assert await _agi_outcome(pbxsim, "refused") == "AGISTATUS=FAILURE"
        await assert_serves_new_client(pbxsim)

    run(scenario())


def test_agi_server_closes_mid_command(pbxsim):
    async def serve(reader, writer):
        while (await reader.readline()).strip():
            pass
        writer.write(b"GET DATA conf-getpin 6000 6\n")
        await writer.drain()
        writer.close()

    async def scenario():
        try:
            server = await asyncio.start_server(serve, AGI_HOST, pbxsim.agi_port)
        except OSError as exc:
            pytest.fail(f"cannot listen on {AGI_HOST}:{pbxsim.agi_port} for the test AGI server: {exc}")
        async with server:
            # Asterisk has read the whole command before it sees the close: it runs it, writes the
            # result into the closed socket, then reads end of file, which means the script is done.
            assert await _agi_outcome(pbxsim, "closed") == "AGISTATUS=SUCCESS"
        await assert_serves_new_client(pbxsim)

    run(scenario())


def test_client_closing_mid_frame(pbxsim):
    async def scenario():
        connection = await open_logged_in(pbxsim.host, pbxsim.port)
        await connection.send_raw(b"Action: Originate\r\nChannel: Local/5551005@phones\r\nCont")
        connection.writer.transport.abort()
        await assert_serves_new_client(pbxsim)

    run(scenario())


def test_frames_split_across_writes(pbxsim):
    async def scenario():
        connection = await open_logged_in(pbxsim.host, pbxsim.port)
        # TCP keeps no frame boundaries: one byte per write must read as the same action.
        for byte in b"Action: Ping\r\nActionID: split\r\n\r\n":
            await connection.send_raw(bytes([byte]))
        pong = await connection.read_response("split")
        assert pong.get("Ping") == "Pong", pong.lines
        await connection.close()
        await assert_serves_new_client(pbxsim)

    run(scenario())
