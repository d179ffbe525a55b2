"""More of the dispatcher end to end: announcements, the dialplan after the queue, recording,
status changes from the portal picked up, abandoned callers resuming, uuid-standby agents, and the
events pushed to the company's webhook."""

import pytest

from queues.models import Agent, Member, Offer, QueueEvent
from queues.pbx import Queues
from queues.services.agents import agent_status_set
from telephony.models import CallRecord, PbxServer, WebhookDelivery
from telephony.testing import ListeningApp, pbx_process, wait_for
from tests.queues.conftest import AGENT_STAYS, AGENT_TALKS, AGENT_TALKS_LONG, CALLER_HANGS_UP, CALLER_WAITS
from tests.queues.factories import AgentFactory, TierFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ears(server):
    ears = ListeningApp(
        ami_events={"Newexten"}, user_events={"QueueAnnounce", "QueueTestExit", "QueueTestAfter", "QueueExit"}
    )
    with pbx_process([server], apps=[Queues(), ears]):
        wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
        yield ears


def _heard(ears, name):
    return [e for e in ears.events if e.get("UserEvent") == name]


def test_the_caller_hears_its_position_at_the_queue_interval(queue, ears, call_in):
    queue.announce_position_every = 2
    queue.save()
    call_in(queue, CALLER_WAITS)
    call_in(queue, CALLER_WAITS)

    announced = wait_for(lambda: len(_heard(ears, "QueueAnnounce")) >= 4 and _heard(ears, "QueueAnnounce"))
    member = Member.objects.order_by("joined_at").first()  # the first to join is first in line
    positions = {e["Member"]: e["Position"] for e in announced}
    assert positions[str(member.uuid)] == "1" and sorted(positions.values()) == ["1", "2"]


def test_a_caller_timed_out_goes_on_in_the_exit_context_at_its_did(queue, ears, call_in):
    queue.max_wait_time = 2
    queue.save()

    call_in(queue, CALLER_WAITS, PLATFORM_QUEUE_EXIT="queue-tests-exit")

    exit_event = wait_for(lambda: _heard(ears, "QueueTestExit"), what="the exit context")[0]
    assert exit_event["Did"] == "5000" and exit_event["Reason"] == "TIMEOUT"


def test_after_the_call_the_caller_goes_on_in_the_after_context_and_the_call_was_recorded(
    queue, ears, call_in, sim
):
    queue.record_template = "queues/{queue}-{member}.wav"
    queue.save()
    TierFactory(queue=queue, agent=AgentFactory(company=queue.company, contact=AGENT_TALKS_LONG))

    call_in(queue, CALLER_WAITS, PLATFORM_QUEUE_AFTER="queue-tests-after")

    after = wait_for(lambda: _heard(ears, "QueueTestAfter"), what="the after context")[0]
    offer = Offer.objects.get(result=Offer.Result.ANSWERED)
    assert after["Agent"] == offer.agent.full_name and after["Ended"].isdigit()
    recording = sim.monitor_dir / "queues" / f"{queue.full_name.replace('@', '_')}-{offer.channel_id}.wav"
    wait_for(recording.exists, what="the recording written")


def test_an_agent_made_available_in_the_portal_is_offered_the_waiting_caller(queue, ears, call_in):
    agent = AgentFactory(company=queue.company, contact=AGENT_STAYS, status=Agent.Status.LOGGED_OUT)
    TierFactory(queue=queue, agent=agent)
    session = call_in(queue, CALLER_WAITS)
    member = wait_for(lambda: Member.objects.filter(session_uuid=session).first(), what="the member")
    assert not Offer.objects.exists()

    agent_status_set(agent_id=agent.pk, status=Agent.Status.AVAILABLE)

    wait_for(
        lambda: Member.objects.filter(pk=member.pk, state=Member.State.ANSWERED).exists(),
        what="the agent offered",
    )


def test_an_abandoned_caller_who_calls_again_takes_up_its_old_place(queue, ears, call_in):
    queue.abandoned_resume_allowed = True
    queue.discard_abandoned_after = 600
    queue.save()
    session = call_in(queue, CALLER_HANGS_UP)
    first = wait_for(lambda: Member.objects.filter(session_uuid=session).first(), what="the member")
    wait_for(
        lambda: Member.objects.filter(pk=first.pk, state=Member.State.ABANDONED).exists(), what="abandon"
    )

    again = call_in(queue, CALLER_HANGS_UP)

    wait_for(lambda: Member.objects.filter(pk=first.pk, session_uuid=again).exists(), what="the resume")
    resumed = Member.objects.get(pk=first.pk)
    assert resumed.resumed and resumed.joined_at == first.joined_at and Member.objects.count() == 1


def test_a_uuid_standby_agent_is_bridged_on_its_own_waiting_channel(queue, ears, call_in, server):
    agent = AgentFactory(company=queue.company, type=Agent.Type.UUID_STANDBY, contact="")
    TierFactory(queue=queue, agent=agent)
    from telephony.facade import PbxFacade

    facade = PbxFacade()
    try:  # the agent calls in and waits
        facade.originate(
            server=server,
            channel_id="standby-agent",
            channel=f"Local/{AGENT_STAYS}@queue-phones",
            context="platform-queue-standby",
            variables={"CC_AGENT": agent.full_name},
            app="test-agent",
        )
    finally:
        facade.close()
    wait_for(lambda: Agent.objects.get(pk=agent.pk).standby_channel, what="the agent waiting")

    session = call_in(queue, CALLER_HANGS_UP)
    member = wait_for(lambda: Member.objects.filter(session_uuid=session).first(), what="the member")

    wait_for(
        lambda: Member.objects.filter(pk=member.pk, state=Member.State.ANSWERED).exists(), what="bridged"
    )
    wait_for(
        lambda: Offer.objects.filter(member=member, ended_at__isnull=False).exists(), what="the call over"
    )
    agent.refresh_from_db()
    assert agent.calls_answered == 1 and agent.standby_channel  # still waiting for the next caller
    assert CallRecord.objects.get(uniqueid="standby-agent").state != "ended"


def test_queue_events_are_pushed_to_the_company_webhook(queue, ears, call_in):
    queue.company.webhook_url = "https://hooks.example.com/cc"
    queue.company.save()
    TierFactory(queue=queue, agent=AgentFactory(company=queue.company, contact=AGENT_TALKS))

    call_in(queue, CALLER_WAITS)

    wait_for(lambda: QueueEvent.objects.filter(action="member-queue-end").exists(), what="the call over")
    pushed = set(WebhookDelivery.objects.values_list("event", flat=True))
    assert {"member-queue-start", "agent-offering", "bridge-agent-start", "bridge-agent-end"} <= pushed
    start = WebhookDelivery.objects.filter(event="bridge-agent-start").first()
    assert (
        start.payload["CC-Queue"] == queue.full_name and start.payload["CC-Member-CID-Number"] == CALLER_WAITS
    )


def test_the_agent_hears_the_callers_outbound_announce_before_the_bridge(queue, ears, call_in):
    TierFactory(queue=queue, agent=AgentFactory(company=queue.company, contact=AGENT_STAYS))

    call_in(queue, CALLER_WAITS, cc_outbound_announce="beep")

    wait_for(lambda: Member.objects.filter(state=Member.State.ANSWERED).exists(), what="the bridge")
    offer = Offer.objects.get()

    def announced():
        steps = [
            e for e in ears.events if e.get("Event") == "Newexten" and e.get("Uniqueid") == offer.channel_id
        ]
        return any(
            e.get("Application") == "ExecIf" and "Playback(beep)" in e.get("AppData", "") for e in steps
        )

    wait_for(announced, what="the announcement on the agent's leg")
