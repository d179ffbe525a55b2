"""The seven runs of the platform's own contract on Asterisk 22.10.1 (apps/README.md), replayed
against the simulator and compared per channel, as test_conformance.py does for traces/.

Each file holds several AMI sessions (the pbx process, the worker's facade, an observer with
every event) and the FastAGI sessions: the actions are replayed from one session (their Logins
left out: the replay logs in itself), the recorded AGI commands are played by a FastAGI server,
and the observer's events are the reference. The dialplan is the contract as shipped plus
apps/people.conf, the phones these runs used.
"""

import asyncio
import os
from pathlib import Path

import pytest

from pbxsim.harness import free_port, running_pbxsim
from pbxsim.tracefile import AGI_IN, AGI_OUT, AMI_OUT, RECORDED_AGI_ADDRESS_ALIASES, parse_trace
from telephony.testing import CONTRACT
from tests.pbxsim.conftest import DEFAULT_TIME_SCALE
from tests.pbxsim.replay import replay_trace
from tests.pbxsim.test_conformance import recorded_setup

APPS_DIR = Path(__file__).with_name("apps")
PEOPLE = APPS_DIR / "people.conf"
TIME_SCALE = float(os.environ.get("PBXSIM_TIME_SCALE", DEFAULT_TIME_SCALE))


def app_trace(path):
    """The trace as replay.py takes it: no Login actions (nor their responses), and the FastAGI
    address the runs used (the pbx process's port) written as the one the replay's server has."""
    trace = parse_trace(path)
    logins = {
        f.get("ActionID") for f in trace.frames if f.direction == AMI_OUT and f.get("Action") == "Login"
    }
    trace.frames = [f for f in trace.frames if f.event or f.get("ActionID") not in logins]
    for frame in trace.frames:
        if frame.direction in (AGI_IN, AGI_OUT):
            frame.lines = [RECORDED_AGI_ADDRESS_ALIASES.sub("127.0.0.1:4573", line) for line in frame.lines]
    return trace


def app_trace_paths():
    return sorted(APPS_DIR.glob("*.ami"))


@pytest.mark.parametrize("path", app_trace_paths(), ids=lambda path: path.stem)
def test_app_trace(path, tmp_path):
    trace = app_trace(path)
    agi_port = free_port()
    globals_file = tmp_path / "globals.conf"
    globals_file.write_text(f"[globals]\nPLATFORM_AGI=agi://127.0.0.1:{agi_port}\n")
    with running_pbxsim(
        dialplans=[CONTRACT, PEOPLE, globals_file], time_scale=TIME_SCALE, extra_args=recorded_setup()
    ) as sim:
        result = asyncio.run(replay_trace(trace, sim.host, sim.port, TIME_SCALE, agi_port))
        if not sim.is_running():
            result.problems.append(f"the simulator exited with {sim.process.returncode} during the replay")
        if result.problems:
            notes = "\n".join(f"  {note}" for note in result.notes)
            pytest.fail(
                "\n\n".join([f"{trace.name}: {trace.what}", *result.problems, "replay notes:\n" + notes])
                + "\n\nsimulator log (tail):\n"
                + sim.log_tail(),
                pytrace=False,
            )
