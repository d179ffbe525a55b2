"""Replays every trace recorded on Asterisk 22.10.1 against the simulator and compares per channel.

How the replay and the comparison work, and what they tolerate: replay.py,
compare.py and fastagi.py. PBXSIM_TIME_SCALE overrides the time scale
(e.g. 1 to replay in real time when a failure looks timing-related).
"""

import asyncio
import os

import pytest

from pbxsim.harness import PHONES_DIALPLAN, running_pbxsim, supports
from pbxsim.tracefile import parse_trace, trace_paths
from tests.pbxsim.conftest import DEFAULT_TIME_SCALE
from tests.pbxsim.replay import replay_login_trace, replay_trace

TIME_SCALE = float(os.environ.get("PBXSIM_TIME_SCALE", DEFAULT_TIME_SCALE))


def recorded_setup():
    """Options that make the simulator the PBX the traces were recorded on: one without a SIP
    stack, so MessageSend has no technology to deliver with."""
    return ["--message-technologies="] if supports("--message-technologies") else []


def _report(trace, result, sim):
    parts = [f"{trace.name}: {trace.what}", *result.problems]
    if result.notes:
        parts.append("replay notes:\n" + "\n".join(f"  {note}" for note in result.notes))
    parts.append("simulator log (tail):\n" + sim.log_tail())
    return "\n\n".join(parts)


@pytest.mark.parametrize("path", trace_paths(), ids=lambda path: path.stem)
def test_trace(path):
    trace = parse_trace(path)
    # The login traces measure the real 1 s delay after a bad secret, so they run unscaled.
    time_scale = 1 if trace.has_own_login else TIME_SCALE
    with running_pbxsim(
        dialplans=[PHONES_DIALPLAN], time_scale=time_scale, extra_args=recorded_setup()
    ) as sim:
        if trace.has_own_login:
            result = asyncio.run(replay_login_trace(trace, sim.host, sim.port))
        else:
            result = asyncio.run(replay_trace(trace, sim.host, sim.port, time_scale, sim.agi_port))
        crashed = not sim.is_running()
        if crashed:
            result.problems.append(f"the simulator exited with {sim.process.returncode} during the replay")
        if result.problems:
            # pytrace=False: the report is the whole story; pytest's rendering of `result` would bury it.
            pytest.fail(_report(trace, result, sim), pytrace=False)
