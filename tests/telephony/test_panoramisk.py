"""What telephony/ami.py relies on of panoramisk (pinned in requirements/base.txt), one test each,
so an upgrade that changes any of it fails here by name rather than somewhere in a call.

Each test drives panoramisk's Manager configured as AmiClient configures it, against pbxsim
where it can produce the case, else against a fake AMI server (tests/telephony/fakeami.py).
"""

import asyncio
import uuid

import pytest
from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from panoramisk.utils import IdGenerator

from pbxsim.harness import AMI_SECRET, AMI_USERNAME, running_pbxsim
from telephony.ami import NEVER, _Nothing
from tests.telephony.fakeami import FakeAmi, frame

TIMEOUT = 5


def run(coroutine, timeout=20):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def manager_for(port, **config):
    """A Manager configured as AmiClient configures it."""
    settings = {
        "loop": asyncio.get_running_loop(),
        "host": "127.0.0.1",
        "port": port,
        "username": AMI_USERNAME,
        "secret": AMI_SECRET,
        "events": "on",
        "ping_delay": NEVER,
        "ping_interval": NEVER,
        "forgetable_actions": _Nothing(),
        **config,
    }
    return Manager(**settings)


async def logged_in(manager):
    """Connect and wait for on_login; returns the manager."""
    done = asyncio.get_running_loop().create_future()
    manager.on_login = lambda m: done.done() or done.set_result(m)
    manager.connect()
    assert await asyncio.wait_for(done, TIMEOUT) is manager
    return manager


@pytest.fixture(scope="module")
def sim():
    with running_pbxsim(time_scale=20) as sim:
        yield sim


# -- login and the connection callbacks ----------------------------------------------------------


@pytest.mark.parametrize("events", ["on", "off"])
def test_login_sends_username_secret_and_the_events_flag(events):
    async def scenario():
        fake = await FakeAmi().listen()
        manager = await logged_in(manager_for(fake.port, events=events))
        _, login = await fake.wait_action("Login")
        assert (login["Username"], login["Secret"], login["Events"]) == (AMI_USERNAME, AMI_SECRET, events)
        manager.close()

    run(scenario())


def test_events_off_session_gets_no_events(sim):
    async def scenario():
        quiet, seen = manager_for(sim.port, events="off"), []
        quiet.register_event("*", lambda m, event: seen.append(event))
        await logged_in(quiet)
        loud = await logged_in(manager_for(sim.port))
        answer = await loud.send_action({"Action": "UserEvent", "UserEvent": "Probe"})
        assert answer.get("Response") == "Success"
        await asyncio.sleep(0.3)
        assert seen == []
        quiet.close()
        loud.close()

    run(scenario())


@pytest.mark.parametrize("response, authenticated", [("Success", True), ("Error", False)])
def test_login_on_the_instance_gets_the_login_future_and_manager_login_says_if_authenticated(
    response, authenticated
):
    """AmiClient replaces `manager.login` and calls Manager.login itself for the verdict."""

    async def scenario():
        fake = await FakeAmi(answer_login=False).listen()
        manager, verdicts, logins = manager_for(fake.port), [], []
        manager.on_login = logins.append
        manager.login = lambda future: verdicts.append(Manager.login(manager, future))
        manager.connect()
        _, login = await fake.wait_action("Login")
        fake.send(frame(("Response", response), ("ActionID", login["ActionID"]), ("Message", "x")))
        await asyncio.sleep(0.2)
        assert verdicts == [authenticated]
        assert logins == ([manager] if authenticated else [])
        manager.close()

    run(scenario())


def test_connection_made_on_the_instance_gets_the_failed_future_of_a_refused_connection():
    async def scenario():
        fake = await FakeAmi().listen()
        await fake.refuse()
        manager, futures = manager_for(fake.port), []
        manager.connection_made = futures.append
        manager.connect()
        await asyncio.sleep(0.3)
        assert len(futures) == 1
        with pytest.raises(OSError):
            futures[0].result()

    run(scenario())


def test_connect_returns_the_task_whose_cancel_reaches_connection_made():
    """AmiClient cancels a connect that outlives the login timeout."""

    async def scenario():
        fake = await FakeAmi().listen()
        manager, futures = manager_for(fake.port), []
        manager.connection_made = futures.append
        task = manager.connect()
        assert isinstance(task, asyncio.Task)
        task.cancel()
        await asyncio.sleep(0.2)
        assert len(futures) == 1 and futures[0].cancelled()
        assert fake.actions == []

    run(scenario())


def test_connection_lost_on_the_instance_replaces_panoramisks_own_reconnect():
    async def scenario():
        fake = await FakeAmi().listen()
        manager, lost = manager_for(fake.port, reconnect_timeout=0), []
        manager.connection_lost = lost.append
        await logged_in(manager)
        fake.drop()
        await asyncio.sleep(0.3)
        assert lost == [None]  # a clean close by the PBX
        assert fake.connections == 1  # panoramisk scheduled no reconnect of its own
        manager.close()

    run(scenario())


def test_close_reports_no_connection_lost():
    """AmiClient closes the manager, then reports the drop itself."""

    async def scenario():
        fake = await FakeAmi().listen()
        manager, lost = manager_for(fake.port), []
        manager.connection_lost = lost.append
        await logged_in(manager)
        manager.close()
        await asyncio.sleep(0.3)
        assert lost == []
        assert manager.protocol.transport.is_closing()

    run(scenario())


def test_protocol_transport_is_the_live_connection_and_pauses_reading():
    async def scenario():
        fake = await FakeAmi().listen()
        manager, seen = manager_for(fake.port), []
        assert manager.protocol is None  # before the first connection
        manager.register_event("*", lambda m, event: seen.append(event.get("UserEvent")))
        await logged_in(manager)
        transport = manager.protocol.transport
        assert isinstance(transport, asyncio.Transport) and not transport.is_closing()
        transport.pause_reading()
        fake.send(frame(("Event", "UserEvent"), ("UserEvent", "held")))
        await asyncio.sleep(0.2)
        assert seen == []
        transport.resume_reading()
        await asyncio.sleep(0.2)
        assert seen == ["held"]
        fake.drop()
        await asyncio.sleep(0.2)
        assert manager.protocol.transport.is_closing()
        manager.close()

    run(scenario())


def test_ping_delay_is_the_key_of_panoramisks_pinger():
    """AmiClient turns panoramisk's pinger off with ping_delay/ping_interval = NEVER; if the keys
    were renamed, panoramisk would ping every 10 s behind the watchdog's back."""

    async def scenario():
        fake = await FakeAmi().listen()
        manager = await logged_in(manager_for(fake.port, ping_delay=1, ping_interval=1))
        await fake.wait_action("Ping", timeout=3)
        manager.close()
        quiet = await logged_in(manager_for(fake.port))
        await asyncio.sleep(1.5)
        assert [n for n, _ in fake.actions_named("Ping")] == [0]
        quiet.close()

    run(scenario())


@pytest.mark.parametrize("forgetable, replayed", [(("ping", "login"), True), (_Nothing(), False)])
def test_forgetable_actions_decide_what_is_replayed_after_a_reconnect(forgetable, replayed):
    async def scenario():
        fake = await FakeAmi(fully_booted=True).listen()
        manager = manager_for(fake.port, forgetable_actions=forgetable)
        manager.connection_lost = lambda exc: None
        await logged_in(manager)
        manager.send_action({"Action": "Originate", "Channel": "Local/1@phones"})
        await fake.wait_action("Originate")
        fake.drop()
        await asyncio.sleep(0.2)
        await logged_in(manager)
        await asyncio.sleep(0.3)  # FullyBooted came with the login: awaiting actions are sent now
        connections = [n for n, _ in fake.actions_named("Originate")]
        assert connections == ([0, 1] if replayed else [0])
        manager.close()

    run(scenario())


# -- actions and their answers ---------------------------------------------------------------------


def test_action_keeps_as_list_and_reads_case_insensitively():
    async def scenario():  # an Action makes its future on the running loop
        action = Action({"Action": "Originate", "Async": "true"}, as_list=False)
        assert action.as_list is False
        assert Action({"Action": "Ping"}).as_list is None
        assert action["action"] == "Originate" and action.get("ASYNC") == "true"
        assert action["ActionID"]

    run(scenario())


def test_id_generator_reset_sets_the_uid_of_new_action_ids():
    """reset_action_ids: a forked child draws ActionIDs the parent never uses."""

    async def scenario():
        uid = str(uuid.uuid4())
        IdGenerator.reset(uid=uid)
        try:
            assert f"/{uid}/" in Action({"Action": "Ping"})["ActionID"]
        finally:
            IdGenerator.reset(uid=str(uuid.uuid4()))

    run(scenario())


def test_async_originate_future_gets_the_response_and_its_originateresponse_which_handlers_miss(sim):
    async def scenario():
        manager, seen = manager_for(sim.port), []
        manager.register_event("OriginateResponse", lambda m, event: seen.append(event))
        await logged_in(manager)
        action = Action({"Action": "Originate", "Async": "true", "Channel": "Local/5551005@phones"})
        action.update(Context="done", Exten="s", Priority="1")
        frames = await asyncio.wait_for(manager.send_action(action, as_list=action.as_list), TIMEOUT)
        assert [f.get("Event") or f.get("Response") for f in frames] == ["Success", "OriginateResponse"]
        await asyncio.sleep(0.2)
        assert seen == []
        manager.close()

    run(scenario())


def test_as_list_false_resolves_on_the_response_and_the_originateresponse_goes_to_handlers(sim):
    """originate_queued: the outcome comes as an event."""

    async def scenario():
        manager = manager_for(sim.port)
        seen = asyncio.get_running_loop().create_future()
        manager.register_event("OriginateResponse", lambda m, event: seen.done() or seen.set_result(event))
        await logged_in(manager)
        action = Action(
            {"Action": "Originate", "Async": "true", "Channel": "Local/5551005@phones", "Context": "done"},
            as_list=False,
        )
        action.update(Exten="s", Priority="1")
        response = await asyncio.wait_for(manager.send_action(action, as_list=action.as_list), TIMEOUT)
        assert response.get("Response") == "Success"
        event = await asyncio.wait_for(seen, TIMEOUT)
        assert event.get("ActionID") == action["ActionID"]
        manager.close()

    run(scenario())


def test_list_action_resolves_with_every_frame_up_to_its_complete_event(sim):
    async def scenario():
        manager = await logged_in(manager_for(sim.port))
        frames = await asyncio.wait_for(manager.send_action(Action({"Action": "CoreShowChannels"})), TIMEOUT)
        assert frames[0].get("Response") == "Success"
        assert frames[-1].get("Event") == "CoreShowChannelsComplete"
        manager.close()

    run(scenario())


# -- events ----------------------------------------------------------------------------------------


def test_star_pattern_gets_every_event_with_the_manager(sim):
    async def scenario():
        manager, seen = manager_for(sim.port), []
        manager.register_event(
            "*", lambda m, event: seen.append((m, event.get("Event"), event.get("UserEvent")))
        )
        await logged_in(manager)
        await manager.send_action({"Action": "UserEvent", "UserEvent": "Probe"})
        await asyncio.sleep(0.3)
        assert (manager, "UserEvent", "Probe") in seen
        manager.close()

    run(scenario())


def test_event_reads_case_insensitively_and_dict_keeps_the_wire_names():
    """process.py folds dict(event): the header names as Asterisk wrote them, repeated ones a list."""

    async def scenario():
        fake = await FakeAmi().listen()
        manager = manager_for(fake.port)
        seen = asyncio.get_running_loop().create_future()
        manager.register_event("*", lambda m, event: seen.done() or seen.set_result(event))
        await logged_in(manager)
        fake.send(
            frame(
                ("Event", "Newchannel"),
                ("Uniqueid", "1700000000.1"),
                ("ChanVariable", "A=1"),
                ("ChanVariable", "B=2"),
            )
        )
        event = await asyncio.wait_for(seen, TIMEOUT)
        assert event.get("uniqueid") == event["UNIQUEID"] == "1700000000.1"
        assert dict(event)["Uniqueid"] == "1700000000.1"
        assert dict(event)["ChanVariable"] == ["A=1", "B=2"]
        manager.close()

    run(scenario())


# -- the protocol (telephony.ami's lean event path reuses it) -----------------------------------


def test_protocol_factory_makes_the_protocol_whose_queue_responses_and_handle_message_we_reuse():
    """_LeanProtocol subclasses AMIProtocol, made by the config's protocol_factory: the unfinished
    frame waits in `queue`, an action awaiting its answer is in `responses` (keyed by its ActionID)
    until answered, `version` is read off the banner, and handle_message hands an event that
    answers no action to the registered handlers."""

    class Recording(AMIProtocol):
        made = []

        def connection_made(self, transport):
            super().connection_made(transport)
            Recording.made.append(self)

    async def scenario():
        fake = await FakeAmi(answer_ping=False).listen()
        manager = manager_for(fake.port, protocol_factory=Recording)
        seen = []
        manager.register_event("*", lambda m, event: seen.append(event.get("Event")))
        await logged_in(manager)
        protocol = manager.protocol
        assert Recording.made == [protocol] and protocol.version == "5.0.0"
        ping = manager.send_action({"Action": "Ping"})
        _, action = await fake.wait_action("Ping")
        assert set(protocol.responses) == {action["ActionID"]}
        protocol.data_received(b"Event: Hangup\r\nUniqueid: 1.1\r\n\r\nEvent: Newst")
        assert list(protocol.queue) == ["Event: Newst"]
        assert seen == ["Hangup"]
        protocol.handle_message(Message.from_line(f"Response: Success\r\nActionID: {action['ActionID']}"))
        assert (await asyncio.wait_for(ping, TIMEOUT)).get("Response") == "Success"
        assert protocol.responses == {}
        manager.close()

    run(scenario())
