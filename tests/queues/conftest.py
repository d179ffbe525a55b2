"""The simulator with the queues' test people, a server routing to them, the real pbx process with
the queues app, and callers calling in."""

import time
from pathlib import Path

import pytest
from django.utils import timezone

from queues.models import Queue
from queues.pbx import REFRESH_SECONDS, Queues
from telephony.facade import PbxFacade
from telephony.models import DialRoute, PbxServer
from telephony.testing import pbx_process, running_contract_pbxsim, wait_for
from tests.queues.factories import QueueFactory
from tests.telephony.conftest import MANAGER_USERS, SCALE
from tests.telephony.factories import PbxServerFactory

QUEUE_PHONES = Path(__file__).with_name("extensions_queues.conf")
CALLER_WAITS = "5561001"
CALLER_HANGS_UP = "5561002"  # after 20 s
CALLER_PRESSES_1 = "5561003"
CALLER_PRESSES_9 = "5561004"
CALLER_CALLED_BACK = "5561005"
CALLER_WAITS_LONG = "5561006"
AGENT_TALKS = "5562001"  # answers after 1 s, talks 5 s
AGENT_BUSY = "5562002"
AGENT_NEVER_ANSWERS = "5562003"
AGENT_STAYS = "5562004"
AGENT_SLOW = "5562005"  # answers after 2 s, stays
AGENT_TALKS_LONG = "5562006"  # answers after 1 s, talks 30 s
AGENT_ANSWERS_LATE = "5562007"  # answers after 40 s, stays
AGENT_DECLINES = "5562008"  # rings 1 s, hangs up with cause 21 (Call Rejected)


@pytest.fixture
def sim(tmp_path):
    with running_contract_pbxsim(
        tmp_path, manager_users=MANAGER_USERS, extra_dialplans=[QUEUE_PHONES], time_scale=SCALE
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
def pbx(server):
    with pbx_process([server], apps=[Queues()]) as runner:
        wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
        yield runner


@pytest.fixture
def call_in(server):
    """call_in(queue, number, **variables): a person at `number` calls the queue's DID."""
    facade = PbxFacade()
    count = iter(range(1, 10_000))

    def call(queue, number, **variables):
        # A test that changed the queue's settings a moment ago calls once the dispatcher's refresh
        # (every REFRESH_SECONDS) has seen them.
        changed = Queue.objects.filter(pk=queue.pk).values_list("changed_at", flat=True).first()
        if changed is not None:
            time.sleep(max(0.0, (changed - timezone.now()).total_seconds() + 2 * REFRESH_SECONDS))
        channel_id = f"in-{number}-{next(count)}"
        facade.originate(
            server=server,
            channel_id=channel_id,
            channel=f"Local/{number}@queue-phones",
            context="platform-queue",
            exten="5000",
            variables={"PLATFORM_QUEUE": queue.full_name, **variables},
            caller_id=f'"Caller {number}" <{number}>',
            app="test-caller",
            timeout=30,
        )
        return channel_id

    yield call
    facade.close()
