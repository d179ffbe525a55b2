"""The Bridge() application's L() as Asterisk's main/features.c (ast_bridge_timelimit, bridge_exec)
and bridges/bridge_builtin_interval_features.c have it, beyond the recorded default case
(bridge-app-time-limit, replayed by test_conformance.py): the LIMIT_* variables are read from the
channel running Bridge(), its "caller"; the target is the "callee". LIMIT_PLAYAUDIO_CALLER (default
yes) and LIMIT_PLAYAUDIO_CALLEE (default no) choose who hears the warning and the timeout file; a
party that hears the timeout file leaves the bridge last. No AMI event marks a sound: the
simulator's log says who heard it.

The scenario is the trace's: the caller (5551005) waits in [card-hold], the agent (5552005) runs
[card-bridge]: Bridge(<caller's uniqueid>,L(6000:3000)) with LIMIT_WARNING_FILE=beep and
LIMIT_TIMEOUT_FILE=vm-goodbye."""

import asyncio
import re

from pbxsim.amiwire import open_logged_in
from pbxsim.harness import PHONES_DIALPLAN, running_pbxsim
from tests.pbxsim.conftest import DEFAULT_TIME_SCALE
from tests.pbxsim.test_app_facts import events, frames_until, originate

CALLER, AGENT = "limit-caller", "limit-agent"

NO_SOUND = """
[limit-silent]
; L() with neither a warning nor a sound: Asterisk turns it into an S()-like limit that
; bridge_exec never applies
exten => s,1,Bridge(${CARD_CALLER},L(2000))
 same => n,UserEvent(SilentEnded,Result: ${BRIDGERESULT})
 same => n,Hangup()
"""


def _scenario(tmp_path, agent_variables=(), context="card-bridge", until="BridgeDestroy", timeout=10.0):
    extra = tmp_path / "limit.conf"
    extra.write_text(NO_SOUND)

    async def run(sim):
        connection = await open_logged_in(sim.host, sim.port)
        await connection.action(
            originate(
                "c",
                "Local/5551005@phones",
                channel_id=CALLER,
                variables=["PLATFORM_CALL=card-1"],
                Context="card-hold",
                Exten="s",
                Priority="1",
            )
        )
        await frames_until(connection, lambda f: f.event == "UserEvent" and f.get("UserEvent") == "Holding")
        await connection.action(
            originate(
                "a",
                "Local/5552005@phones",
                channel_id=AGENT,
                variables=[f"CARD_CALLER={CALLER}", "PLATFORM_CALL=agent-1", *agent_variables],
                Context=context,
                Exten="s",
                Priority="1",
            )
        )
        try:
            frames = await frames_until(connection, lambda f: f.event == until, timeout=timeout)
        except TimeoutError:
            frames = None
        await connection.close()
        return frames

    with running_pbxsim(dialplans=[PHONES_DIALPLAN, extra], time_scale=DEFAULT_TIME_SCALE) as sim:
        frames = asyncio.run(asyncio.wait_for(run(sim), 30))
        log = sim.log_text()
    return frames, log


def _leaving_order(frames):
    return [frame.get("Uniqueid") for frame in events(frames, "BridgeLeave")]


def _heard(log, kind):
    """Who heard the warning or the timeout file, by their channel's phone number."""
    found = re.findall(rf"Bridge L\(\): Local/(\d+)@\S+ hears the {kind} file", log)
    return sorted(set(found))


def test_by_default_the_channel_running_bridge_hears_the_sounds_and_leaves_last(tmp_path):
    frames, log = _scenario(tmp_path)
    assert _leaving_order(frames) == [CALLER, AGENT]
    assert _heard(log, "warning") == ["5552005"] and _heard(log, "timeout") == ["5552005"]


def test_limit_playaudio_callee_makes_the_target_hear_them_and_leave_last(tmp_path):
    frames, log = _scenario(tmp_path, ["LIMIT_PLAYAUDIO_CALLER=no", "LIMIT_PLAYAUDIO_CALLEE=yes"])
    assert _leaving_order(frames) == [AGENT, CALLER]
    assert _heard(log, "warning") == ["5551005"] and _heard(log, "timeout") == ["5551005"]
    # Each goes on in its own dialplan: the agent after Bridge(), the caller after its music.
    (ended,) = [f for f in events(frames, "UserEvent") if f.get("UserEvent") == "AgentBridgeEnded"]
    assert ended.get("Result") == "SUCCESS"


def test_both_parties_hear_the_sounds_when_both_are_asked_for(tmp_path):
    frames, log = _scenario(tmp_path, ["LIMIT_PLAYAUDIO_CALLER=yes", "LIMIT_PLAYAUDIO_CALLEE=yes"])
    assert sorted(_leaving_order(frames)) == [AGENT, CALLER]
    assert _heard(log, "warning") == ["5551005", "5552005"]
    assert _heard(log, "timeout") == ["5551005", "5552005"]


def test_both_no_is_read_as_the_caller_only(tmp_path):
    frames, log = _scenario(tmp_path, ["LIMIT_PLAYAUDIO_CALLER=no", "LIMIT_PLAYAUDIO_CALLEE=no"])
    assert _leaving_order(frames) == [CALLER, AGENT]
    assert _heard(log, "warning") == ["5552005"] and _heard(log, "timeout") == ["5552005"]


def test_a_limit_with_no_warning_and_no_sound_is_no_limit_at_all(tmp_path):
    # L(2000) would end the bridge 2 s (0.1 s here) after it began: 20 s of PBX time later it holds.
    frames, log = _scenario(tmp_path, context="limit-silent", until="BridgeLeave", timeout=1.0)
    assert frames is None
    assert "Asterisk sets no limit" in log
