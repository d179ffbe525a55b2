"""The apps' entry point in the pbx process, end to end on pbxsim: typed events after commit, the
PBX handle, lanes, timers kept in the database, the example app of WRITING_APPS.md."""

import asyncio

import pytest

from telephony.events import CallAnswered, CallEnded, CallStarted, OriginateResult
from telephony.models import AppTimer, CallRecord, PbxServer
from telephony.platform import PbxApp, ami_events_read, register
from telephony.services.timers import app_timer_set
from telephony.testing import ListeningApp, pbx_process, wait_for
from tests.telephony.wakeup import WakeupCalls

pytestmark = pytest.mark.django_db(transaction=True)


def connected(server):
    wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")


def record_state(pk):
    return CallRecord.objects.filter(pk=pk).values_list("state", "ended_at").get()


class Recorder(PbxApp):
    """Notes each typed event with what the database held when it was delivered."""

    def __init__(self, name="recorder", all_calls=False):
        self.name = name
        self.all_calls = all_calls
        self.seen = []
        self.ctx = None

    async def started(self, ctx):
        self.ctx = ctx

    async def on_call_event(self, ctx, event):
        self.seen.append((type(event).__name__, event, await ctx.db(record_state, pk=event.record.id)))


def run_in(runner, coroutine):
    return asyncio.run_coroutine_threadsafe(coroutine, runner.loop).result(15)


def test_an_app_gets_its_calls_typed_events_after_commit_in_order(server):
    app, other = Recorder(), Recorder("other")
    with pbx_process([server], apps=[app, other]) as runner:
        connected(server)
        wait_for(lambda: app.ctx is not None, what="started after the reconcile")
        outcome = run_in(
            runner,
            app.ctx.pbx.originate(
                channel_id="t-typed", number="5551001", context="platform-hold", app="recorder", wait=True
            ),
        )
        assert (outcome.outcome, outcome.reason) == ("answered", 4)
        wait_for(lambda: any(kind == "CallEnded" for kind, _, _ in app.seen), what="the call to end")
    kinds = [kind for kind, _, _ in app.seen]
    assert kinds == ["CallStarted", "CallAnswered", "OriginateResult", "CallEnded"]
    for _kind, event, (state, _ended_at) in app.seen:
        # What the event says is in the database by the time the app hears of it.
        order = ["claimed", "sent", "ringing", "answered", "ended"]
        assert order.index(state) >= order.index(event.record.state)
    ended = app.seen[-1][1]
    assert ended.record.disposition == "ANSWERED" and ended.record.billsec == 2
    assert app.seen[-1][2][1] == ended.record.ended_at
    assert other.seen == []  # another app's calls are not its business


def test_an_app_with_all_calls_sees_the_bridge_with_the_other_leg(server, facade):
    app = Recorder(all_calls=True)
    with pbx_process([server], apps=[app]) as runner:
        connected(server)
        for name in ("a", "b"):
            facade.originate(
                server=server, channel_id=f"t-br-{name}", number="5551005", context="platform-hold"
            )
        wait_for(lambda: sum(kind == "CallAnswered" for kind, _, _ in app.seen) == 2)
        channels = {e.record.uniqueid: e.record.channel for kind, e, _ in app.seen if kind == "CallAnswered"}
        run_in(runner, app.ctx.pbx.bridge(channel1=channels["t-br-a"], channel2=channels["t-br-b"]))
        wait_for(lambda: any(kind == "CallBridged" for kind, _, _ in app.seen), what="the bridge")
        run_in(runner, app.ctx.pbx.hangup(channel=channels["t-br-a"]))
        # The other side is not hung up: it goes on in its dialplan, which ends it after the hold.
        wait_for(lambda: sum(kind == "CallEnded" for kind, _, _ in app.seen) == 2)
    bridged = {e.record.uniqueid: e.other.uniqueid for kind, e, _ in app.seen if kind == "CallBridged"}
    assert bridged == {"t-br-a": "t-br-b", "t-br-b": "t-br-a"}
    assert CallRecord.objects.filter(uniqueid__startswith="t-br-", bridged_at__isnull=False).count() == 2


class Stuck(PbxApp):
    name = "stuck"
    all_calls = True

    def __init__(self):
        # Made here, not in `started`: a call's first events may reach the lane before `started`
        # runs (a loaded CI machine showed it), and the app must be stuck on them all the same.
        self.release = asyncio.Event()
        self.got = 0

    async def on_call_event(self, ctx, event):
        self.got += 1
        await self.release.wait()


class Failing(PbxApp):
    name = "failing"
    all_calls = True

    async def on_call_event(self, ctx, event):
        raise RuntimeError("a bug in one app")


def test_a_stuck_or_failing_app_delays_no_other_app_and_never_the_fold(server, facade):
    stuck, failing, fast = Stuck(), Failing(), Recorder(all_calls=True)
    with pbx_process([server], apps=[stuck, failing, fast]) as runner:
        connected(server)
        for n in range(3):
            facade.originate(
                server=server, channel_id=f"t-lane-{n}", number="5551012", context="platform-hold"
            )
        wait_for(lambda: sum(kind == "CallEnded" for kind, _, _ in fast.seen) == 3, what="the fast app")
        assert stuck.got == 1  # still on its first event
        assert CallRecord.objects.filter(uniqueid__startswith="t-lane-", state="ended").count() == 3
        runner.loop.call_soon_threadsafe(stuck.release.set)
        wait_for(lambda: stuck.got == 3 * 4, what="the stuck app to catch up, in order")


def test_timers_are_kept_in_the_database_and_rebuilt_by_a_new_process(server):
    app = WakeupCalls()
    # Set by an earlier process that then stopped: only the database remembers it.
    app_timer_set(
        app="wakeup", server_id=server.pk, key="wake:early", seconds=0, payload={"number": "5551009"}
    )
    with pbx_process([server], apps=[app]):
        wait_for(lambda: app.ended, timeout=15, what="the rebuilt timer's call")
    assert app.outcomes == {"wake:early": "answered"}
    assert app.ended[0].record.app_ref == "wake:early"
    assert not AppTimer.objects.exists()  # fired once, then gone


def test_the_example_app_books_a_wakeup_over_fastagi_and_rings_back(server, facade):
    app = WakeupCalls()
    with pbx_process([server], apps=[app]):
        connected(server)
        # A caller reaches [platform-agi] and keys 1 (second) then #.
        facade.originate(
            server=server,
            channel_id="t-book",
            channel="Local/5550100@platform-agi",
            application="SendDTMF",
            data="ww1#",
            caller_id="5551009",
            variables={"PLATFORM_SCRIPT": "wakeup"},
        )
        wait_for(lambda: app.ended, timeout=20, what="the wake-up call")
    event = app.ended[0]
    assert isinstance(event, CallEnded)
    assert (event.record.callee, event.record.disposition, event.record.app) == (
        "5551009",
        "ANSWERED",
        "wakeup",
    )
    assert list(app.outcomes.values()) == ["answered"]
    assert app.starts == 1


def test_register_refuses_an_app_without_a_name_or_with_a_missing_script():
    class Nameless(PbxApp):
        pass

    class MissingScript(PbxApp):
        name = "missing"
        agi_scripts = {"menu": "no_such_method"}

    with pytest.raises(ValueError, match="needs a name"):
        register(Nameless())
    with pytest.raises(TypeError, match="async method 'no_such_method'"):
        register(MissingScript())


def test_typed_event_classes_carry_the_webhook_names():
    assert (CallStarted.webhook_event, CallAnswered.webhook_event, CallEnded.webhook_event) == (
        "ringing",
        "answer",
        "hangup",
    )
    assert OriginateResult.webhook_event == ""


class Watcher(PbxApp):
    """Hears the contract's PlatformAgiUnavailable UserEvents; serves one script that fails."""

    name = "watcher"
    user_events = frozenset({"PlatformAgiUnavailable"})
    agi_scripts = {"broken": "broken"}

    def __init__(self):
        self.unavailable = []

    async def broken(self, ctx, call):
        await call.answer()
        raise RuntimeError("a bug in the script")

    async def on_ami_event(self, ctx, event):
        self.unavailable.append(event)


def dial_agi(facade, server, script, channel_id, **variables):
    facade.originate(
        server=server,
        channel_id=channel_id,
        channel="Local/5550100@platform-agi",
        application="Wait",
        data="3",
        variables={"PLATFORM_SCRIPT": script, **variables},
    )


@pytest.mark.parametrize(("script", "result"), [("nosuch", "unavailable"), ("broken", "failed")])
def test_a_script_that_cannot_serve_the_call_sends_it_down_the_contracts_failure_path(
    server, facade, sim, script, result
):
    app = Watcher()
    with pbx_process([server], apps=[app]):
        connected(server)
        dial_agi(facade, server, script, f"t-{script}")
        event = wait_for(lambda: app.unavailable and app.unavailable[0], what="PlatformAgiUnavailable")
        wait_for(lambda: CallRecord.objects.filter(uniqueid=f"t-{script}", state="ended").exists())
    assert (event["Script"], event["Result"], event["AgiStatus"]) == (script, result, "SUCCESS")
    # No fallback set: the caller hears that there is no service, not silence.
    wait_for(lambda: "ss-noservice" in sim.log_text(), what="the announcement in the simulator's log")


def test_an_unreachable_fastagi_server_takes_the_fallback(server, facade, sim):
    app = Watcher()
    with pbx_process([server], apps=[app]) as runner:
        connected(server)
        runner.loop.call_soon_threadsafe(runner.link(server).agi_server.close)  # FastAGI gone, AMI up
        # The fallback context takes the same DID: here a test phone that answers.
        dial_agi(facade, server, "wakeup", "t-noagi", PLATFORM_FALLBACK="fallback-test")
        event = wait_for(lambda: app.unavailable and app.unavailable[0], what="PlatformAgiUnavailable")
        wait_for(
            lambda: "fallback-test,5550100,1" in sim.log_text(), what="the fallback in the simulator's log"
        )
    assert (event["AgiStatus"], event["Script"]) == ("FAILURE", "wakeup")


def test_the_raw_events_the_apps_read_are_their_ami_events_and_userevent():
    """What the pbx process lets through its lean event path besides the fold's (telephony.ami)."""
    hold = ListeningApp(user_events={"PlatformHold"})
    cdrs = ListeningApp(ami_events={"Cdr", "AGIExecStart"})
    assert ami_events_read([]) == frozenset()
    assert ami_events_read([hold]) == {"UserEvent"}
    assert ami_events_read([hold, cdrs]) == {"UserEvent", "Cdr", "AGIExecStart"}
    assert ami_events_read([cdrs, ListeningApp(ami_events={"*"})]) is None
