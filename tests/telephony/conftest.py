from pathlib import Path

import pytest

from telephony.facade import PbxFacade
from telephony.testing import running_contract_pbxsim
from tests.telephony.factories import PbxServerFactory

MANAGER_USERS = Path(__file__).with_name("manager.conf")
TEST_CONTEXTS = Path(__file__).with_name("extensions_tests.conf")
SCALE = 20


@pytest.fixture
def sim(tmp_path):
    """pbxsim running the shipped contract and the test phones, 20 times faster than life."""
    with running_contract_pbxsim(
        tmp_path, manager_users=MANAGER_USERS, extra_dialplans=[TEST_CONTEXTS], time_scale=SCALE
    ) as sim:
        yield sim


@pytest.fixture
def server(sim):
    return PbxServerFactory(ami_port=sim.port, agi_bind_port=sim.agi_port)


@pytest.fixture
def facade():
    facade = PbxFacade()
    yield facade
    facade.close()
