"""The simulator with the card holders and the queues' agents, the real pbx process with the
callcards and queues apps, and holders dialing in."""

import collections
import itertools
from pathlib import Path

import pytest

from callcards.pbx import CallCards
from queues.pbx import Queues
from telephony.facade import PbxFacade
from telephony.models import DialRoute, PbxServer
from telephony.platform import PbxApp
from telephony.testing import pbx_process, running_contract_pbxsim, wait_for
from tests.callcards.factories import CardFactory
from tests.queues.conftest import QUEUE_PHONES
from tests.queues.factories import QueueFactory
from tests.telephony.conftest import MANAGER_USERS
from tests.telephony.factories import PbxServerFactory

CARD_PHONES = Path(__file__).with_name("extensions_callcards.conf")
DID = "5559000"
CARD_ID, PIN = "200000000014", "11112222"  # what the card holders of extensions_callcards.conf key
# Slower than the other apps' tests: a holder keys its next try in the few seconds between the
# prompts, and those seconds are real milliseconds of the machine running the test (at 10, the
# 5 s between two keys was 0.5 s, and a loaded CI took longer: the digits split into two tries).
SCALE = 5
HOLDER_STAYS = "5571001"
HOLDER_HANGS_UP = "5571002"  # 50 s after answering
UNKNOWN_CARD = "5571003"
WRONG_PIN = "5571004"
KEYS_NOTHING = "5571005"
KEYS_STAR_HASH_LETTERS = "5571006"
HANGS_UP_MID_ENTRY = "5571007"
HANGS_UP_BEFORE_KEYING = "5571008"
HOLDER_HANGS_UP_SOON = "5571009"  # 15 s after answering


class AgiCommands(PbxApp):
    """What each channel was asked over FastAGI (the prompts a caller heard), from AGIExecStart."""

    name = "test-agi-commands"
    ami_events = frozenset({"AGIExecStart"})

    def __init__(self):
        self.by_channel: dict[str, list[str]] = collections.defaultdict(list)

    async def on_ami_event(self, ctx, event):
        self.by_channel[event.get("Uniqueid", "")].append(event.get("Command", ""))

    def sounds(self, uniqueid: str) -> list[str]:
        """The files streamed and the prompts of GET DATA, in order."""
        out = []
        for command in self.by_channel.get(uniqueid, []):
            words = command.split()
            if words[:2] in (["STREAM", "FILE"], ["GET", "DATA"]):
                out.append(words[2])
        return out


@pytest.fixture
def sim(tmp_path):
    with running_contract_pbxsim(
        tmp_path,
        manager_users=MANAGER_USERS,
        extra_dialplans=[CARD_PHONES, QUEUE_PHONES],
        time_scale=SCALE,
    ) as sim:
        yield sim


@pytest.fixture
def server(sim):
    server = PbxServerFactory(ami_port=sim.port, agi_bind_port=sim.agi_port)
    DialRoute.objects.update_or_create(
        server=server, name="default", defaults={"template": "Local/{number}@queue-phones"}
    )
    return server


@pytest.fixture
def queue(server):
    return QueueFactory(server=server, offer_timeout=5)


@pytest.fixture
def card(queue):
    return CardFactory(
        company=queue.company, queue=queue, card_id=CARD_ID, pin=PIN, balance_minutes=10, warning_minutes=1
    )


@pytest.fixture
def agi_commands():
    return AgiCommands()


def running(server, agi_commands):
    process = pbx_process([server], apps=[CallCards(), Queues(), agi_commands])
    process.__enter__()
    wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
    return process


@pytest.fixture
def pbx(server, agi_commands):
    process = running(server, agi_commands)
    yield process
    process.__exit__(None, None, None)


@pytest.fixture
def dial_in(server):
    """dial_in(number): the card holder at `number` calls the DID; returns its leg's Uniqueid."""
    facade = PbxFacade()
    count = itertools.count(1)

    def call(number, *, did=DID):
        channel_id = f"card-{number}-{next(count)}"
        facade.originate(
            server=server,
            channel_id=channel_id,
            channel=f"Local/{number}@card-phones",
            context="platform-agi",
            exten=did,
            variables={"PLATFORM_SCRIPT": "callcard"},
            caller_id=f'"Holder {number}" <{number}>',
            app="test-caller",
            timeout=30,
        )
        return channel_id

    yield call
    facade.close()
