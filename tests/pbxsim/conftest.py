"""Fixtures for tests that need a running PBX simulator (see pbxsim/harness.py for the helpers)."""

import pytest

from pbxsim.harness import PHONES_DIALPLAN, running_pbxsim

# Fast enough that the phones' Wait(60) takes 3 s, slow enough that loopback jitter stays far below
# the shortest recorded gap that matters (Wait(1) becomes 50 ms).
DEFAULT_TIME_SCALE = 20


@pytest.fixture
def pbxsim():
    """A simulator with the recorded test dialplan, for one test."""
    with running_pbxsim(dialplans=[PHONES_DIALPLAN], time_scale=DEFAULT_TIME_SCALE) as sim:
        yield sim
