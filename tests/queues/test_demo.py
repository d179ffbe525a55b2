"""`make run`'s queue demo: demo_data adds the queue support@demo and its agents on the demo phones."""

import pytest
from django.core.management import call_command

from queues.demo import load_demo_queues
from queues.models import Agent, Member, Offer, Queue, Tier
from queues.pbx import Queues
from queues.services.agents import agent_status_set
from telephony.facade import PbxFacade
from telephony.models import CallRecord, PbxServer
from telephony.testing import pbx_process, wait_for
from telephony.transitions import LOST_TEXT
from tests.demo import running_demo_pbx
from tests.factories import CompanyFactory
from tests.queues.conftest import SCALE

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
    with running_demo_pbx(tmp_path, time_scale=SCALE) as server:
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


@pytest.mark.django_db(transaction=True)
def test_the_demo_caller_who_hangs_up_while_waiting_leaves_the_queue_at_once(tmp_path):
    """`manage.py call 5551020`'s path: the caller reaches [platform-queue] on a Local channel's ;2
    half, which the queue adopts. Hanging up while it waits ends that leg with its own Hangup (not
    the minute's reconcile): the member leaves the queue at once, its record is the caller's real
    call, and the agent who comes back is offered the next caller, never the departed one."""
    with running_demo_pbx(tmp_path, time_scale=SCALE) as server:
        company = CompanyFactory(slug="demo")
        load_demo_queues(None, company=company, write=lambda text: None)
        Agent.objects.update(status=Agent.Status.ON_BREAK)  # nobody to take the first caller
        facade = PbxFacade()
        try:
            with pbx_process([server], apps=[Queues()]):
                wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected")
                facade.originate(
                    server=server,
                    channel_id="demo-gone",
                    number="5551020",
                    context="platform-hold",
                    # as `manage.py call` does, with the caller's patience cut to 40 s (2 s here)
                    variables={"PLATFORM_CALL": "demo-gone", "PLATFORM_HOLD_MAX": "40"},
                    app="call",
                )
                gone = wait_for(lambda: Member.objects.filter(session_uuid="demo-gone;2").first())
                # Well within the reconcile's minute: the event's time.
                wait_for(
                    lambda: Member.objects.filter(pk=gone.pk, state=Member.State.ABANDONED).exists(),
                    what="the departed caller to leave the queue",
                )
                agent = Agent.objects.get(name="1000")
                agent_status_set(agent_id=agent.pk, status=Agent.Status.AVAILABLE)
                facade.originate(
                    server=server,
                    channel_id="demo-next",
                    number="5551020",
                    context="platform-hold",
                    variables={"PLATFORM_CALL": "demo-next", "PLATFORM_HOLD_MAX": "600"},
                    app="call",
                )
                offer = wait_for(lambda: Offer.objects.filter(agent=agent).first(), what="the next offer")
                assert offer.member.session_uuid == "demo-next;2"
        finally:
            facade.close()
    assert not Offer.objects.filter(member=gone).exists()
    leg, pair = CallRecord.objects.get(uniqueid="demo-gone;2"), CallRecord.objects.get(uniqueid="demo-gone")
    assert (leg.app, leg.company, leg.state, leg.disposition) == ("queues", company, "ended", "ANSWERED")
    assert leg.hangup_cause_text != LOST_TEXT and leg.hangup_cause is not None
    assert leg.channel.endswith(";2") and leg.linkedid == "demo-gone"
    assert leg.answered_at is not None and leg.started_at is not None
    # The caller's hold (40 s of PBX time) and the leg's real end, not a reconcile's.
    assert 40 <= leg.duration <= 41 and abs((leg.ended_at - pair.ended_at).total_seconds()) < 1
