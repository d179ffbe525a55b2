"""pbxsim running the contract, the trace's phones and the ticket DIDs; the real pbx process with
the tickets app; callers dialing a ticket line's DID."""

import itertools
import json
from pathlib import Path

import pytest

from telephony.facade import PbxFacade
from telephony.models import DialRoute, PbxServer
from telephony.testing import pbx_process, running_contract_pbxsim, wait_for
from tests.telephony.conftest import MANAGER_USERS
from tests.telephony.factories import PbxServerFactory
from tests.tickets.factories import TechnicianFactory, TicketLineFactory
from tickets.pbx import Tickets

TICKET_DIALPLAN = Path(__file__).with_name("extensions_tickets.conf")
DID = "5557000"
SCALE = 10
# The trace's callers ([phones] of tests/pbxsim/conf/extensions.conf)
CONFIRMS = "5551032"  # keys 1 2.5 s after answering, stays 30 s
# ours (extensions_tickets.conf)
WRONG_DIGIT = "5573001@ticket-phones"
SILENT = "5573002@ticket-phones"
CONFIRMS_LONG = "5573003@ticket-phones"
GIVES_UP = "5573005@ticket-phones"  # keys 1, hangs up 15 s after answering
TECH_ANSWERS = "Local/5573101@ticket-phones"  # answers after 1 s, talks 3 s


@pytest.fixture
def sim_args():
    return []


@pytest.fixture
def sim(tmp_path, sim_args):
    with running_contract_pbxsim(
        tmp_path,
        manager_users=MANAGER_USERS,
        extra_dialplans=[TICKET_DIALPLAN],
        time_scale=SCALE,
        extra_args=sim_args,
    ) as sim:
        yield sim


@pytest.fixture
def server(sim):
    server = PbxServerFactory(ami_port=sim.port, agi_bind_port=sim.agi_port)
    DialRoute.objects.update_or_create(
        server=server, name="default", defaults={"template": "Local/{number}@phones"}
    )
    return server


@pytest.fixture
def recordings(tmp_path, settings):
    settings.TICKETS_RECORDING_DIR = tmp_path / "recordings"
    return settings.TICKETS_RECORDING_DIR


@pytest.fixture
def line(server, recordings):
    return TicketLineFactory(server=server, number=DID, ring_seconds=5, wrap=False)


@pytest.fixture
def two_technicians(line):
    """tech1 never answers (5552201 & 5552202), tech2's mobile answers (5552203 & 5552204)."""
    tech1 = TechnicianFactory(line=line, name="Tech One", position=1, internal="5552201", mobile="5552202")
    tech2 = TechnicianFactory(line=line, name="Tech Two", position=2, internal="5552203", mobile="5552204")
    return tech1, tech2


def running(server):
    process = pbx_process([server], apps=[Tickets()])
    process.__enter__()
    wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
    return process


@pytest.fixture
def pbx(server):
    process = running(server)
    yield process
    process.__exit__(None, None, None)


@pytest.fixture
def call_line(server):
    """call_line(number): the caller at `number` ([phones], or number@ticket-phones) dials the DID;
    returns its leg's Uniqueid."""
    facade = PbxFacade()
    count = itertools.count(1)

    def call(number, *, did=DID):
        digits, _, phones = number.partition("@")
        channel_id = f"ticket-{digits}-{next(count)}"
        facade.originate(
            server=server,
            channel_id=channel_id,
            channel=f"Local/{digits}@{phones or 'phones'}",
            context="ticket-dids",
            exten=did,
            caller_id=f'"Caller" <{digits}>',
            app="test-caller",
            timeout=30,
        )
        return channel_id

    yield call
    facade.close()


def messages_sent(sim):
    """What pbxsim delivered with MessageSend (its messages file), in order."""
    path = sim.messages_file
    if path is None or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ran(sim, caller):
    """The dialplan applications the caller's call ran (its ;1 half), in order, from pbxsim's log."""
    digits, _, phones = caller.partition("@")
    prefix = f"Local/{digits}@{phones or 'phones'}-"
    out = []
    for text in sim.log_text().splitlines():
        _, _, rest = text.partition(" INFO pbxsim.apps: ")
        channel, _, step = rest.partition(": ")
        if channel.startswith(prefix) and channel.endswith(";1"):
            out.append(step.split(" ", 1)[1] if " " in step else step)
    return out
