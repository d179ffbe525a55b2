"""`make run`'s queue demo: demo_data adds the queue support@demo and its agents on the demo phones."""

import pytest
from django.core.management import call_command

from pbxsim.harness import free_port, running_pbxsim
from queues.demo import load_demo_queues
from queues.models import Agent, Member, Queue, Tier
from queues.pbx import Queues
from telephony.facade import PbxFacade
from telephony.models import DialRoute, PbxServer
from telephony.testing import CONTRACT, pbx_process, wait_for
from tests.factories import CompanyFactory
from tests.queues.conftest import SCALE
from tests.telephony.factories import PbxServerFactory

DEMO_DIR = CONTRACT.parent / "demo"
DEMO_PHONES = DEMO_DIR / "phones.conf"
DEMO_MANAGER = DEMO_DIR / "manager.conf"

pytestmark = pytest.mark.django_db


def test_demo_data_adds_a_queue_with_agents_on_the_demo_phones(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("demo_data")
    Agent.objects.filter(name="1001").update(status=Agent.Status.ON_BREAK)  # a change the next run keeps
    call_command("demo_data")

    queue = Queue.objects.get(name="support", company__slug="demo")
    assert queue.server.name == "demo" and queue.callback_key == "1" and queue.exit_keys == "0"
    tiers = Tier.objects.filter(queue=queue).select_related("agent").order_by("position")
    assert [(t.agent.name, t.agent.contact) for t in tiers] == [("1000", "5552005"), ("1001", "5552001")]
    assert Agent.objects.get(name="1001").status == Agent.Status.ON_BREAK
    assert Agent.objects.get(name="1000").user.username == "demo"
    assert "support@demo" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_the_demo_caller_phone_reaches_an_agent_of_the_demo_queue(tmp_path):
    """`manage.py call 5551020` on the demo: the caller joins support@demo, agent 1000 answers."""
    agi_port = free_port()
    (tmp_path / "globals.conf").write_text(f"[globals]\nPLATFORM_AGI=agi://127.0.0.1:{agi_port}\n")
    dialplans = [CONTRACT, DEMO_PHONES, tmp_path / "globals.conf"]
    with running_pbxsim(dialplans=dialplans, manager_users=DEMO_MANAGER, time_scale=SCALE) as sim:
        server = PbxServerFactory(
            name="demo",
            ami_port=sim.port,
            agi_bind_port=agi_port,
            ami_username="platform",
            ami_secret="platform-demo",
        )
        DialRoute.objects.update_or_create(
            server=server, name="default", defaults={"template": "Local/{number}@phones"}
        )
        company = CompanyFactory(slug="demo")
        load_demo_queues(None, company=company, write=lambda text: None)
        with pbx_process([server], apps=[Queues()]):
            wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
            facade = PbxFacade()
            try:
                facade.originate(
                    server=server,
                    channel_id="demo-caller",
                    number="5551020",
                    context="platform-hold",
                    app="demo",
                )
                member = wait_for(
                    lambda: Member.objects.filter(state=Member.State.ANSWERED).first(),
                    what="the call answered",
                )
            finally:
                facade.close()
        assert member.queue.full_name == "support@demo" and member.agent.name == "1000"
