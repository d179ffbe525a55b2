"""Another app sends a caller to a queue (queues.services.handoff), end to end on pbxsim through the
real pbx process: its FastAGI script in [platform-agi] sets the hand-over variables, the caller goes
on to [platform-queue] (PLATFORM_AGI_NEXT), an agent answers, and the source app learns of it from
its own leg's typed events and queue_call. With a talk limit, the bridge is Bridge() L() run by the
agent's channel, which Asterisk ends by itself."""

import time

import pytest

from queues.models import Agent, Member, Offer
from queues.pbx import Queues
from queues.services.handoff import queue_call, queue_variables
from telephony.events import CallBridged, CallEnded
from telephony.facade import PbxFacade
from telephony.models import CallRecord, PbxServer
from telephony.platform import PbxApp
from telephony.services.calls import call_record_adopt
from telephony.testing import pbx_process, wait_for
from tests.queues.conftest import AGENT_STAYS, AGENT_TALKS, CALLER_HANGS_UP, CALLER_PRESSES_1, CALLER_WAITS
from tests.queues.factories import AgentFactory, TierFactory

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 20  # seconds of PBX time: 1 s at the tests' time scale
WARNING = 5
# Both phones would stay 600 s (30 s here): a call over within seconds was ended by the limit.
PHONES_STAY = 600


class SourceApp(PbxApp):
    """A source app as callcards is one: its script hands the caller over; it hears its own leg's
    typed events and reads queue_call on each."""

    name = "handoff_test"
    agi_scripts = {"handoff-test": "send", "handoff-none": "nothing"}
    user_events = frozenset({"QueueTestAfter", "QueueLimitedBridge"})

    def __init__(self, queue, **limit):
        self.queue, self.limit = queue, limit
        self.seen: list[tuple[str, str, object]] = []
        self.user_events_seen: list[dict] = []

    async def send(self, ctx, call):
        ref = await call.get_variable("TEST_REF")
        await ctx.db(
            call_record_adopt,
            server_id=ctx.server.pk,
            uniqueid=call.uniqueid,
            company_id=self.queue.company_id,
            app=self.name,
            app_ref=ref,
        )
        variables = queue_variables(
            queue=self.queue.full_name, source_app=self.name, source_ref=ref, **self.limit
        )
        for name, value in variables.items():
            await call.set_variable(name, value)

    async def nothing(self, ctx, call):
        """A script that hands nobody over."""

    async def on_call_event(self, ctx, event):
        if isinstance(event, CallBridged | CallEnded):
            found = await ctx.read(queue_call, source_app=self.name, source_ref=event.record.app_ref)
            self.seen.append((type(event).__name__, event.record.uniqueid, found))

    async def on_ami_event(self, ctx, event):
        self.user_events_seen.append(event)


def _send(server, ref, script="handoff-test", number=CALLER_WAITS, **variables):
    """The caller dials a DID routed to [platform-agi] with the source app's script."""
    facade = PbxFacade()
    try:
        facade.originate(
            server=server,
            channel_id=ref,
            channel=f"Local/{number}@queue-phones",
            context="platform-agi",
            exten="5000",
            variables={
                "PLATFORM_SCRIPT": script,
                "TEST_REF": ref,
                "PLATFORM_QUEUE_AFTER": "queue-tests-after",
                **variables,
            },
            caller_id=f'"Card holder" <{CALLER_WAITS}>',
            app="handoff_test",
            app_ref=ref,
            timeout=30,
        )
    finally:
        facade.close()


def _running(server, source):
    process = pbx_process([server], apps=[Queues(), source])
    process.__enter__()
    wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
    return process


@pytest.fixture
def agent(queue):
    agent = AgentFactory(company=queue.company, contact=AGENT_STAYS, wrap_up_time=0)
    TierFactory(queue=queue, agent=agent)
    return agent


def test_a_caller_sent_with_a_talk_limit_is_bridged_until_the_limit_then_goes_on(server, queue, agent):
    limit = {"talk_limit_seconds": LIMIT, "warning_seconds": WARNING}
    source = SourceApp(queue, **limit, warning_sound="beep", timeout_sound="vm-goodbye")
    process = _running(server, source)
    try:
        _send(server, "card-call-1")
        member = wait_for(
            lambda: Member.objects.filter(source_app="handoff_test", source_ref="card-call-1").first(),
            what="the member",
        )
        assert (member.talk_limit, member.talk_warning) == (LIMIT, WARNING)
        assert (member.limit_warning_file, member.limit_timeout_file) == ("beep", "vm-goodbye")
        ended = Offer.objects.filter(member=member, ended_at__isnull=False)
        offer = wait_for(ended.first, what="the bridge's end")
        wait_for(lambda: any(e.get("UserEvent") == "QueueTestAfter" for e in source.user_events_seen))
        wait_for(lambda: any(kind == "CallEnded" for kind, _, _ in source.seen), what="the caller's end")
    finally:
        process.__exit__(None, None, None)

    # Bridged with Bridge() L() by the agent's channel, not with the Bridge action.
    limited = [e for e in source.user_events_seen if e.get("UserEvent") == "QueueLimitedBridge"]
    assert [e.get("Limit") for e in limited] == [f"{LIMIT * 1000}:{WARNING * 1000}"]
    assert limited[0].get("Offer") == offer.channel_id
    # The caller went on after the call: [platform-queue-wait] `after`, then PLATFORM_QUEUE_AFTER.
    after = next(e for e in source.user_events_seen if e.get("UserEvent") == "QueueTestAfter")
    assert after.get("Agent") == agent.full_name and after.get("Did") == "5000"

    caller = CallRecord.objects.get(uniqueid="card-call-1")
    agent_leg = CallRecord.objects.get(uniqueid=offer.channel_id)
    assert caller.app == "handoff_test" and caller.bridged_at is not None and caller.state == "ended"
    # The PBX's own times: the agent leaves the bridge at the limit; the caller hears the timeout
    # file, so it leaves last.
    talked = (agent_leg.ended_at - caller.bridged_at).total_seconds()
    assert LIMIT - 0.5 <= talked <= LIMIT + 1, talked
    assert caller.ended_at > agent_leg.ended_at
    assert (caller.ended_at - caller.bridged_at).total_seconds() < PHONES_STAY / 2

    member.refresh_from_db()
    assert member.state == Member.State.ANSWERED and member.agent == agent
    assert member.bridged_at is not None and member.ended_at is not None
    assert offer.result == Offer.Result.ANSWERED and offer.hangup_cause == "Normal Clearing"
    agent.refresh_from_db()
    assert agent.state == Agent.State.WAITING and agent.calls_answered == 1

    # What the source app read when its leg's events came.
    kinds = [(kind, uniqueid) for kind, uniqueid, _ in source.seen]
    assert kinds[0] == ("CallBridged", "card-call-1") and kinds[-1] == ("CallEnded", "card-call-1")
    at_bridge, at_end = source.seen[0][2], source.seen[-1][2]
    assert at_bridge.agent == agent.full_name and at_bridge.answered and at_bridge.queue == queue.full_name
    assert at_bridge.talk_limit == LIMIT and at_bridge.member_uuid == str(member.uuid)
    assert at_end.over and at_end.state == Member.State.ANSWERED and at_end.cancel_reason == ""
    now = queue_call(source_app="handoff_test", source_ref="card-call-1")
    assert (now.answered_at, now.ended_at) == (member.bridged_at, member.ended_at)


def test_the_limit_ends_the_call_when_the_pbx_process_is_gone(server, queue, agent):
    source = SourceApp(queue, talk_limit_seconds=LIMIT, timeout_sound="vm-goodbye")
    process = _running(server, source)
    try:
        _send(server, "card-call-2")
        member = wait_for(
            lambda: Member.objects.filter(source_ref="card-call-2", state=Member.State.ANSWERED).first(),
            what="the answer",
        )
        wait_for(
            lambda: CallRecord.objects.filter(uniqueid="card-call-2", bridged_at__isnull=False).exists(),
            what="the caller bridged",
        )
    finally:
        process.__exit__(None, None, None)  # the pbx process goes away right after the bridge
    stopped = time.monotonic()
    offer = Offer.objects.get(member=member, result=Offer.Result.ANSWERED)
    assert offer.ended_at is None

    facade = PbxFacade()
    try:

        def call_over():
            live = {c.get("Uniqueid") for c in facade.live_channels(server=server)}
            return not live & {"card-call-2", offer.channel_id}

        wait_for(call_over, timeout=PHONES_STAY / 20 / 2, what="Asterisk to end the call at the limit")
    finally:
        facade.close()
    assert time.monotonic() - stopped < PHONES_STAY / 20 / 2

    process = _running(server, source)  # back: the call is over, the agent free again
    try:
        wait_for(lambda: Offer.objects.filter(pk=offer.pk, ended_at__isnull=False).exists(), what="the end")
        wait_for(lambda: Agent.objects.filter(pk=agent.pk, state=Agent.State.WAITING).exists(), what="agent")
    finally:
        process.__exit__(None, None, None)
    assert queue_call(source_app="handoff_test", source_ref="card-call-2").over


def test_a_caller_sent_without_a_limit_is_bridged_with_the_bridge_action(server, queue, agent):
    source = SourceApp(queue)
    process = _running(server, source)
    try:
        _send(server, "card-call-3")
        member = wait_for(
            lambda: Member.objects.filter(source_ref="card-call-3", state=Member.State.ANSWERED).first(),
            what="the answer",
        )
        wait_for(lambda: any(kind == "CallBridged" for kind, _, _ in source.seen), what="the bridge")
        facade = PbxFacade()
        try:
            facade.hangup(server=server, channel=member.channel)
        finally:
            facade.close()
        wait_for(lambda: Offer.objects.filter(member=member, ended_at__isnull=False).exists(), what="the end")
        wait_for(lambda: any(kind == "CallEnded" for kind, _, _ in source.seen), what="the caller's end")
    finally:
        process.__exit__(None, None, None)
    member.refresh_from_db()
    assert member.talk_limit is None and member.source_app == "handoff_test"
    assert not [e for e in source.user_events_seen if e.get("UserEvent") == "QueueLimitedBridge"]
    ended = queue_call(source_app="handoff_test", source_ref="card-call-3")
    assert ended.over and ended.agent == agent.full_name and ended.talk_limit is None


def test_a_standby_agent_waits_again_after_a_limited_call(server, queue):
    agent = AgentFactory(company=queue.company, type=Agent.Type.UUID_STANDBY, contact="", wrap_up_time=0)
    TierFactory(queue=queue, agent=agent)
    source = SourceApp(queue, talk_limit_seconds=LIMIT, timeout_sound="vm-goodbye")
    process = _running(server, source)
    try:
        facade = PbxFacade()
        try:  # the agent calls in and waits on its own channel
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
        for number, ref in enumerate(("card-call-4", "card-call-5"), 1):
            _send(server, ref)
            member = wait_for(
                lambda ref=ref: Member.objects.filter(source_ref=ref, ended_at__isnull=False).first(),
                what=f"call {number} over",
            )
            assert member.state == Member.State.ANSWERED and member.agent == agent
            wait_for(
                lambda number=number: Agent.objects.filter(
                    pk=agent.pk, calls_answered=number, state=Agent.State.WAITING
                ).exists(),
                what="the agent free again",
            )
        assert CallRecord.objects.get(uniqueid="standby-agent").state != "ended"
    finally:
        process.__exit__(None, None, None)
    limited = [e.get("Offer") for e in source.user_events_seen if e.get("UserEvent") == "QueueLimitedBridge"]
    assert len(limited) == 2
    assert Agent.objects.get(pk=agent.pk).standby_channel


def test_only_the_script_sends_the_caller_on(server, queue):
    """PLATFORM_AGI_NEXT is cleared before the AGI: set by whoever routed the call, it is not followed."""
    source = SourceApp(queue)
    process = _running(server, source)
    try:
        _send(server, "card-call-6", script="handoff-none", PLATFORM_AGI_NEXT="queue-tests-after")
        wait_for(lambda: any(kind == "CallEnded" for kind, _, _ in source.seen), what="the call's end")
    finally:
        process.__exit__(None, None, None)
    assert not [e for e in source.user_events_seen if e.get("UserEvent") == "QueueTestAfter"]
    assert not Member.objects.exists()


@pytest.mark.parametrize(
    "caller, agent_number, goes_on",
    [(CALLER_HANGS_UP, AGENT_STAYS, False), (CALLER_WAITS, AGENT_TALKS, True)],
    ids=["the caller hangs up", "the agent hangs up"],
)
def test_a_limited_call_ended_by_either_party_before_the_limit(server, queue, caller, agent_number, goes_on):
    agent = AgentFactory(company=queue.company, contact=agent_number, wrap_up_time=0)
    TierFactory(queue=queue, agent=agent)
    source = SourceApp(queue, talk_limit_seconds=PHONES_STAY, warning_seconds=60, timeout_sound="vm-goodbye")
    process = _running(server, source)
    try:
        _send(server, "card-call-7", number=caller)
        member = wait_for(
            lambda: Member.objects.filter(source_ref="card-call-7", ended_at__isnull=False).first(),
            what="the call's end",
        )
        wait_for(lambda: Agent.objects.filter(pk=agent.pk, state=Agent.State.WAITING).exists(), what="agent")
        wait_for(lambda: any(kind == "CallEnded" for kind, _, _ in source.seen), what="the caller's end")
    finally:
        process.__exit__(None, None, None)
    assert member.state == Member.State.ANSWERED and member.bridged_at is not None
    caller_leg = CallRecord.objects.get(uniqueid="card-call-7")
    talked = (caller_leg.ended_at - caller_leg.bridged_at).total_seconds()
    assert talked < PHONES_STAY / 2  # ended by a party, long before the limit
    went_on = [e for e in source.user_events_seen if e.get("UserEvent") == "QueueTestAfter"]
    assert bool(went_on) == goes_on
    assert Agent.objects.get(pk=agent.pk).calls_answered == 1
    assert queue_call(source_app="handoff_test", source_ref="card-call-7").over


def test_a_caller_sent_by_another_app_is_offered_no_call_back(sim, server, queue):
    """The queue's call back key would hang the caller up: the source app's call (a card's billed
    talk) would end, and the talk after the call back be nobody's. The key is heard as any other."""
    queue.callback_key = "1"
    queue.save()
    source = SourceApp(queue, talk_limit_seconds=LIMIT, timeout_sound="vm-goodbye")
    process = _running(server, source)
    try:
        _send(server, "card-call-5", number=CALLER_PRESSES_1)
        member = wait_for(lambda: Member.objects.filter(source_ref="card-call-5").first(), what="the join")
        wait_for(lambda: "queue-key" in sim.log_text(), what="the key pressed")
        TierFactory(
            queue=queue, agent=AgentFactory(company=queue.company, contact=AGENT_STAYS, wrap_up_time=0)
        )
        wait_for(
            lambda: Member.objects.filter(pk=member.pk, state=Member.State.ANSWERED).exists(),
            what="the answer",
        )
        # The member is answered before the bridge is made: the process is stopped only once the
        # caller's leg is bridged (a CI run stopped it while the Bridge action was under way).
        wait_for(
            lambda: ("CallBridged", "card-call-5") in [(kind, uniqueid) for kind, uniqueid, _ in source.seen],
            what="the caller bridged",
        )
    finally:
        process.__exit__(None, None, None)
    member.refresh_from_db()
    assert member.callback_number == ""
    assert "queue-thankyou" not in sim.log_text()
    assert [kind for kind, uniqueid, _ in source.seen if uniqueid == "card-call-5"][:1] == ["CallBridged"]
