from pathlib import Path

import pytest

from pbxsim.harness import free_port, running_pbxsim
from telephony.facade import PbxFacade
from telephony.testing import contract_dialplans
from tests.telephony.factories import PbxServerFactory

MANAGER_USERS = Path(__file__).with_name("manager.conf")
TEST_CONTEXTS = Path(__file__).with_name("extensions_tests.conf")
SCALE = 20


@pytest.fixture
def sim(tmp_path):
    """pbxsim running the shipped contract and the test phones, 20 times faster than life."""
    agi_port = free_port()
    with running_pbxsim(
        dialplans=[*contract_dialplans(tmp_path, agi_port), TEST_CONTEXTS],
        manager_users=MANAGER_USERS,
        time_scale=SCALE,
    ) as sim:
        sim.agi_port = agi_port
        yield sim


@pytest.fixture
def server(sim):
    return PbxServerFactory(ami_port=sim.port, agi_bind_port=sim.agi_port)


@pytest.fixture
def facade():
    facade = PbxFacade()
    yield facade
    facade.close()
