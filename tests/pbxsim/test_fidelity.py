"""Behaviours of Asterisk 22 that no recorded trace shows in full, compared by hand with a real
Asterisk: hang-up causes nothing set, Answer's wait for media, Originate's outcome when the far
end hangs up unanswered, what CoreShowChannels shows of bridged channels.

The timings are read from the events' `Timestamp:` header, which carries the simulator's clock
(simulated seconds), so they do not depend on how fast the machine runs the test.
"""

import asyncio
import contextlib

from pbxsim.amiwire import open_logged_in
from pbxsim.harness import MANAGER_USERS, PHONES_DIALPLAN, running_pbxsim
from tests.pbxsim.test_bad_input import is_event, run, wait_event

TIME_SCALE = 4

DIALPLAN = """
[fid-agi-in]
; an inbound call: the ;2 half rings and runs AGI before anything answers it
exten => 100,1,AGI(agi://127.0.0.1:{agi_port}/inbound)

[fid-quiet]
; the ;1 half once answered: sends no media, marks a quarter of a second
exten => s,1,Wait(0.25)
 same => n,UserEvent(QuarterSecond)
 same => n,Wait(30)

[fid-caller-phone]
; a phone that calls in and presses 5 while the callee rings
exten => 300,1,Answer()
 same => n,Wait(0.5)
 same => n,SendDTMF(5)
 same => n,Wait(30)

[fid-dialer]
exten => s,1,Dial(Local/200@fid-callee,10)

[fid-callee]
; rings 2 s, then answers
exten => 200,1,Ringing()
 same => n,Wait(2)
 same => n,Answer()
 same => n,UserEvent(CalleeAnswered)
 same => n,Wait(30)
"""


@contextlib.contextmanager
def simulator(tmp_path, agi_port=0):
    dialplan = tmp_path / "fidelity.conf"
    dialplan.write_text(DIALPLAN.format(agi_port=agi_port))
    manager = tmp_path / "manager.conf"
    manager.write_text(MANAGER_USERS.read_text().replace("[general]", "[general]\ntimestampevents = yes", 1))
    with running_pbxsim(
        dialplans=[PHONES_DIALPLAN, dialplan], manager_users=manager, time_scale=TIME_SCALE
    ) as sim:
        yield sim


async def originate(connection, channel, context, call_id, exten="s"):
    response = await connection.action(
        [
            ("Action", "Originate"),
            ("Channel", channel),
            ("Async", "true"),
            ("ChannelId", f"{call_id}-1"),
            ("OtherChannelId", f"{call_id}-2"),
            ("Context", context),
            ("Exten", exten),
            ("Priority", "1"),
            ("ActionID", f"originate-{call_id}"),
        ]
    )
    assert response.get("Response") == "Success", response.lines


def stamp(frame):
    return float(frame.get("Timestamp"))


class InboundAgi:
    """A FastAGI server that sends the given commands one after the other, then closes."""

    def __init__(self, commands):
        self.commands = commands
        self.results = []

    async def serve(self, reader, writer):
        while (await reader.readline()).strip():
            pass
        for command in self.commands:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            self.results.append((await reader.readline()).decode().strip())
        writer.close()


async def agi_server(agi):
    return await asyncio.start_server(agi.serve, "127.0.0.1", 0)


def test_agi_hangup_of_an_unanswered_inbound_call(tmp_path):
    """Nothing set a cause: Cause 0 `Unknown` on both halves; the Originate waiting on the ;1 sees
    its far end hang up before answering: DialEnd NOANSWER and OriginateResponse Reason 0."""

    async def scenario(server):
        port = server.sockets[0].getsockname()[1]
        with simulator(tmp_path, port) as sim:
            connection = await open_logged_in(sim.host, sim.port)
            await originate(connection, "Local/100@fid-agi-in", "fid-quiet", "in")
            inbound = await wait_event(connection, is_event("Hangup", Uniqueid="in-2"))
            assert (inbound.get("Cause"), inbound.get("Cause-txt")) == ("0", "Unknown"), inbound.lines
            dial_end = await wait_event(connection, is_event("DialEnd", DestUniqueid="in-1"))
            assert dial_end.get("DialStatus") == "NOANSWER", dial_end.lines
            outcome = await wait_event(connection, is_event("OriginateResponse", ActionID="originate-in"))
            assert (outcome.get("Response"), outcome.get("Reason")) == ("Failure", "0"), outcome.lines
            originated = await wait_event(connection, is_event("Hangup", Uniqueid="in-1"))
            assert originated.get("Cause") == "0", originated.lines
            await connection.close()

    agi = InboundAgi(["HANGUP"])

    async def main():
        server = await agi_server(agi)
        async with server:
            await scenario(server)

    run(main())
    assert agi.results == ["200 result=1"]


def test_agi_answer_waits_for_media(tmp_path):
    """AGI ANSWER on a ringing inbound channel returns at the first media from the far end, or
    500 ms later: the ;1 that answers plays nothing, so it returns after the ;1's 0.25 s mark."""

    agi = InboundAgi(["ANSWER", "HANGUP"])

    async def main():
        server = await agi_server(agi)
        async with server:
            with simulator(tmp_path, server.sockets[0].getsockname()[1]) as sim:
                connection = await open_logged_in(sim.host, sim.port)
                await originate(connection, "Local/100@fid-agi-in", "fid-quiet", "ans")
                start = await wait_event(
                    connection, is_event("AGIExecStart", Uniqueid="ans-2", Command="ANSWER")
                )
                end = await wait_event(connection, is_event("AGIExecEnd", Uniqueid="ans-2", Command="ANSWER"))
                mark = await wait_event(connection, is_event("UserEvent", UserEvent="QuarterSecond"))
                assert stamp(mark) < stamp(end), (stamp(start), stamp(mark), stamp(end))
                assert 0.45 <= stamp(end) - stamp(start) <= 0.75, (stamp(start), stamp(end))
                await connection.close()

    run(main())
    assert agi.results[0] == "200 result=0"


def test_callee_answer_returns_at_a_key_pressed_while_ringing(tmp_path):
    """Dial passes the caller's keys on to its single callee while it rings; the key is a frame
    that ends the callee's Answer() wait for media at once, instead of 500 ms later."""

    async def main():
        with simulator(tmp_path) as sim:
            connection = await open_logged_in(sim.host, sim.port)
            await originate(connection, "Local/300@fid-caller-phone", "fid-dialer", "key")
            up = await wait_event(
                connection, is_event("Newstate", ChannelStateDesc="Up", Exten="200", Context="fid-callee")
            )
            answered = await wait_event(connection, is_event("UserEvent", UserEvent="CalleeAnswered"))
            assert stamp(answered) - stamp(up) < 0.25, (stamp(up), stamp(answered))
            await connection.close()

    run(main())


def test_core_show_channels_shows_no_application_for_bridged_channels(tmp_path):
    """Channels the Bridge action took out of MusicOnHold run no application while bridged."""

    async def main():
        with simulator(tmp_path) as sim:
            connection = await open_logged_in(sim.host, sim.port)
            for call in ("h1", "h2"):
                await originate(connection, "Local/5551005@phones", "hold", call)
                await wait_event(connection, is_event("MusicOnHoldStart", Uniqueid=f"{call}-1"))
            response = await connection.action(
                [("Action", "Bridge"), ("Channel1", "h1-1"), ("Channel2", "h2-1"), ("ActionID", "b")]
            )
            assert response.get("Response") == "Success", response.lines
            await wait_event(connection, is_event("BridgeEnter", Uniqueid="h2-1"))
            await connection.send([("Action", "CoreShowChannels"), ("ActionID", "show")])
            shown = {}
            while len(shown) < 4:
                frame = await wait_event(connection, is_event("CoreShowChannel", ActionID="show"))
                shown[frame.get("Uniqueid")] = frame.get("Application")
            assert (shown["h1-1"], shown["h2-1"]) == ("", ""), shown
            assert shown["h1-2"] == "Wait", shown
            await connection.close()

    run(main())
