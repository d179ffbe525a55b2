"""The PBX: simulated clock, identifiers, the AMI event bus, Originate and the dialplan runner."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .agi import agi_application
from .apps import Applications
from .channels import (
    CONTROL_ANSWER,
    CONTROL_BUSY,
    CONTROL_CONGESTION,
    CONTROL_HANGUP,
    CONTROL_RINGING,
    SOFTHANGUP_APPUNLOAD,
    SOFTHANGUP_TIMEOUT,
    STATE_DOWN,
    STATE_RING,
    Bridge,
    Channel,
    Interrupted,
)
from .dialplan import Dialplan, DialplanError
from .functions import read_function

log = logging.getLogger("pbxsim")

# Asterisk's failure reasons in OriginateResponse are the last control frame seen.
REASON_NONE, REASON_RINGING, REASON_ANSWERED, REASON_BUSY, REASON_CONGESTION = 0, 3, 4, 5, 8


@dataclass
class OriginateRequest:
    channel: str
    context: str = ""
    exten: str = ""
    priority: str = "1"
    application: str = ""
    data: str = ""
    timeout_ms: int = 30000
    callerid: tuple[str, str] | None = None
    variables: list[tuple[str, str]] = field(default_factory=list)
    account: str = ""
    channel_id: str = ""
    other_channel_id: str = ""
    action_id: str | None = None
    is_async: bool = True


# Receives every event: (event name, privilege classes, body of `Header: value\r\n` lines).
EventListener = Callable[[str, str, str], None]


@dataclass
class Settings:
    time_scale: float = 1.0
    sounds_dir: Path | None = None
    monitor_dir: Path = Path("var/pbxsim/monitor")
    messages_file: Path | None = None
    # technology (upper case) -> context its calls are routed to; exten is the dialled number
    routes: dict[str, str] = field(default_factory=dict)
    message_technologies: frozenset[str] = frozenset({"pjsip"})
    agi_connect_timeout: float = 2.0
    # manager.conf [general] timestampevents: each event carries the PBX clock (simulated time).
    timestamp_events: bool = False
    # A failed Originate: Asterisk 22 sent its OriginateResponse before the ;1's Hangup in every
    # run of tests/pbxsim/apps, older traces show the other order; both happen, so an app must
    # decide the same either way. "hangup-first" lets a test run the other order.
    originate_failure_order: str = "response-first"


class PBX:
    def __init__(self, dialplan: Dialplan, settings: Settings):
        self.dialplan = dialplan
        self.settings = settings
        self.time_scale = settings.time_scale
        self._wall0 = time.time()
        self._mono0 = time.monotonic()
        self.channels: dict[str, Channel] = {}
        self.by_uniqueid: dict[str, Channel] = {}
        self.listeners: list[EventListener] = []
        self._local_ids = itertools.count(0)
        self._tech_ids: dict[str, itertools.count] = {}
        self._uid_seq = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self.agi_database: dict[tuple[str, str], str] = {}
        self.apps = Applications(self)
        self.apps.add("AGI", agi_application(self))

    # -- clock -----------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated wall-clock time: the start time plus elapsed real time times the scale."""
        return self._wall0 + (time.monotonic() - self._mono0) * self.time_scale

    def real(self, sim_seconds: float) -> float:
        return max(sim_seconds, 0.0) / self.time_scale

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(self.real(sim_seconds))

    def uptime(self) -> int:
        return int(time.monotonic() - self._mono0)

    # -- identifiers -----------------------------------------------------------------------------

    def new_uniqueid(self) -> str:
        return f"{int(self.now())}.{next(self._uid_seq)}"

    def next_tech_id(self, tech: str) -> int:
        return next(self._tech_ids.setdefault(tech, itertools.count(1)))

    # -- events ----------------------------------------------------------------------------------

    def subscribe(self, listener: EventListener) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: EventListener) -> None:
        self.listeners.remove(listener)

    def emit(self, event: str, privilege: str, body: str) -> None:
        for listener in self.listeners:
            listener(event, privilege, body)

    @staticmethod
    def read_function(chan: Channel, name: str, args: str) -> str:
        return read_function(chan, name, args)

    def spawn(self, coro, name: str | None = None) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    # -- channel registry ------------------------------------------------------------------------

    def register(self, chan: Channel) -> None:
        self.channels[chan.name] = chan
        self.by_uniqueid[chan.uniqueid] = chan
        if not chan.hidden:
            self.emit("Newchannel", "call,all", chan.snapshot())

    def unregister(self, chan: Channel) -> None:
        if self.channels.get(chan.name) is chan:
            del self.channels[chan.name]
        if self.by_uniqueid.get(chan.uniqueid) is chan:
            del self.by_uniqueid[chan.uniqueid]

    def find_channel(self, name: str) -> Channel | None:
        return self.channels.get(name) or self.by_uniqueid.get(name)

    # -- channel creation ------------------------------------------------------------------------

    def request(
        self, dialstring: str, linkedid: str | None, uid1: str = "", uid2: str = ""
    ) -> tuple[Channel, Channel] | None:
        """Create the two halves a dial string reaches, or None for a technology we do not have.

        A Local channel is the visible pair `;1`/`;2`; any other routed technology is one visible
        channel (`PJSIP/carrier-00000001`) whose far end runs the routed context unseen.
        """
        tech, _, resource = dialstring.partition("/")
        if not resource:
            return None
        if tech.lower() == "local":
            target = resource.split("/")[0]
            exten, _, context = target.partition("@")
            context = context or "default"
            n = next(self._local_ids)
            base = f"Local/{exten}@{context}-{n:08x}"
            uid1 = uid1 or self.new_uniqueid()
            uid2 = uid2 or self.new_uniqueid()
            linkedid = linkedid or uid1
            one = Channel(self, base + ";1", uid1, linkedid, context, exten, STATE_DOWN, "Local")
            two = Channel(self, base + ";2", uid2, linkedid, context, exten, STATE_RING, "Local")
        else:
            route = self.settings.routes.get(tech.upper())
            if route is None or route not in self.dialplan.contexts:
                return None
            number, _, endpoint = resource.partition("@")
            endpoint = endpoint or number
            if "@" not in resource and "/" in resource:
                endpoint, _, number = resource.partition("/")
            uid1 = uid1 or self.new_uniqueid()
            uid2 = uid2 or self.new_uniqueid()
            linkedid = linkedid or uid1
            name = f"{tech}/{endpoint}-{self.next_tech_id(tech.upper()):08x}"
            one = Channel(self, name, uid1, linkedid, route, number, STATE_DOWN, tech)
            two = Channel(self, name + ";far", uid2, linkedid, route, number, STATE_RING, tech, hidden=True)
        one.local_peer, two.local_peer = two, one
        self.register(one)
        self.register(two)
        return one, two

    def emit_local_bridge(self, one: Channel, two: Channel) -> None:
        if one.tech != "Local":
            return
        self.emit(
            "LocalBridge",
            "call,all",
            one.snapshot("LocalOne")
            + two.snapshot("LocalTwo")
            + f"Context: {two.context}\r\nExten: {two.exten}\r\nLocalOptimization: Yes\r\n",
        )

    @staticmethod
    def dial_string_of(chan: Channel) -> str:
        return f"{chan.exten}@{chan.context}" if chan.tech == "Local" else chan.exten

    def fail_pair(self, one: Channel, two: Channel) -> None:
        """The far end's extension does not exist: both halves go without request events."""
        one.local_peer = two.local_peer = None
        two.hangup()
        one.hangup()

    # -- Originate -------------------------------------------------------------------------------

    async def originate(self, req: OriginateRequest, respond: Callable[[str], None] | None) -> bool:
        """Run one Originate to its outcome; `respond` gets OriginateResponse bodies (async mode)."""
        cid_num = req.callerid[1] if req.callerid else ""
        cid_name = req.callerid[0] if req.callerid else ""

        def outcome(success: bool, channel: str, reason: int, uniqueid: str) -> None:
            if not req.is_async:
                return
            target = (
                f"Context: {req.context}\r\nExten: {req.exten}\r\n"
                if not req.application
                else f"Application: {req.application}\r\nData: {req.data}\r\n"
            )
            body = (
                (f"ActionID: {req.action_id}\r\n" if req.action_id is not None else "")
                + f"Response: {'Success' if success else 'Failure'}\r\nChannel: {channel}\r\n"
                + target
                + f"Reason: {reason}\r\nUniqueid: {uniqueid}\r\n"
                + f"CallerIDNum: {cid_num or '<unknown>'}\r\nCallerIDName: {cid_name or '<unknown>'}\r\n"
            )
            self.emit("OriginateResponse", "call,all", body)

        def fail(reason: int) -> bool:
            """The ;1 goes and the response says why, in the order the settings choose."""
            if self.settings.originate_failure_order == "hangup-first":
                one.hangup()
                outcome(False, req.channel, reason, one.uniqueid)
            else:
                outcome(False, req.channel, reason, one.uniqueid)
                one.hangup()
            return False

        pair = self.request(req.channel, None, req.channel_id, req.other_channel_id)
        if pair is None:
            log.info("originate %s: no such channel technology", req.channel)
            outcome(False, req.channel, REASON_NONE, req.channel_id or "<unknown>")
            return False
        one, two = pair
        one.accountcode = two.accountcode = req.account
        self.apps.newexten(one, "AppDial2", "(Outgoing Line)")
        for name, value in reversed(req.variables):
            one.set_variable(name, value)
        if req.callerid:
            one.set_callerid(cid_num, cid_name)
            one.set_connected(cid_num, cid_name)
        for name, value in req.variables:
            two.set_variable(name, value)
        if req.callerid:
            two.conn_num, two.conn_name = one.cid_num, one.cid_name
            two.set_callerid(one.conn_num, one.conn_name)
            two.set_connected(one.cid_num, one.cid_name)
        if not self.dialplan.exists(two.context, two.exten, 1):
            log.info("originate %s: no extension %s in context %s", req.channel, two.exten, two.context)
            self.fail_pair(one, two)
            outcome(False, req.channel, REASON_NONE, one.uniqueid)
            return False
        self.emit_local_bridge(one, two)
        dial_string = self.dial_string_of(one)
        self.emit("DialBegin", "call,all", one.snapshot("Dest") + f"DialString: {dial_string}\r\n")
        one.dial_queue = asyncio.Queue()
        two.pbx_task = self.spawn(self.run_pbx(two), name=f"pbx {two.name}")
        deadline = time.monotonic() + self.real(req.timeout_ms / 1000)
        while True:
            remaining = deadline - time.monotonic()
            control = None
            if remaining > 0:
                try:
                    control = await asyncio.wait_for(one.dial_queue.get(), remaining)
                except TimeoutError:
                    control = None
            if control is None:  # no answer within the Originate's Timeout: Asterisk reports it as ringing
                one.dial_queue = None
                one.hangupcause = 19
                return fail(REASON_RINGING)
            if control == CONTROL_RINGING:
                self.emit("DialState", "call,all", one.snapshot("Dest") + "DialStatus: RINGING\r\n")
            elif control == CONTROL_ANSWER:
                one.dial_queue = None
                self.emit("DialEnd", "call,all", one.snapshot("Dest") + "DialStatus: ANSWER\r\n")
                outcome(True, one.name, REASON_ANSWERED, one.uniqueid)
                if req.application:
                    one.pbx_task = self.spawn(self.run_application(one, req.application, req.data))
                else:
                    one.context, one.exten = req.context or "default", req.exten or "s"
                    one.priority = self.dialplan.resolve_priority(one.context, one.exten, req.priority) or 1
                    one.pbx_task = self.spawn(self.run_pbx(one), name=f"pbx {one.name}")
                return True
            elif control in (CONTROL_BUSY, CONTROL_CONGESTION):
                one.dial_queue = None
                status = "BUSY" if control == CONTROL_BUSY else "CONGESTION"
                self.emit("DialEnd", "call,all", one.snapshot("Dest") + f"DialStatus: {status}\r\n")
                one.cdr.current.disposition = status
                return fail(REASON_BUSY if control == CONTROL_BUSY else REASON_CONGESTION)
            elif control == CONTROL_HANGUP:  # the far end hung up before answering
                one.dial_queue = None
                self.emit("DialEnd", "call,all", one.snapshot("Dest") + "DialStatus: NOANSWER\r\n")
                return fail(REASON_NONE)

    # -- running the dialplan --------------------------------------------------------------------

    async def run_application(self, chan: Channel, app: str, data: str) -> None:
        """An Originate with Application: the answered channel runs it, outside any dialplan."""
        chan.current_app, chan.current_data = app, data
        chan.cdr.on_app(app, data)
        try:
            await self.apps.run(chan, app, data, newexten=False)
        except DialplanError as exc:
            log.error("%s: %s; ending the call", chan.name, exc)
        if chan.alive:
            # No dialplan ran, so nothing set a cause: both halves end with Cause 0 (Asterisk 22).
            await self.pbx_end(chan, soft=False)

    async def run_pbx(self, chan: Channel) -> None:
        soft = True
        try:
            while chan.alive:
                if chan.pending_bridge is not None:
                    bridge, chan.pending_bridge = chan.pending_bridge, None
                    await self.stay_in_action_bridge(chan, bridge)
                    if chan.hangup_requested:
                        soft = False
                        break
                    continue
                if chan.async_goto is not None:
                    chan.context, chan.exten, chan.priority = chan.async_goto
                    chan.async_goto = None
                if chan.hangup_requested:
                    break
                ext = self.dialplan.find_extension(chan.context, chan.exten)
                prio = ext.priorities.get(chan.priority) if ext else None
                if prio is None:
                    if ext is None:
                        log.warning("%s: no extension %s in context %s", chan.name, chan.exten, chan.context)
                    if not chan.hangupcause:
                        chan.hangupcause = 16
                    break
                res = await self.apps.run(chan, prio.app, prio.data, source=prio.source)
                if chan.async_goto is not None or chan.pending_bridge is not None:
                    continue
                if res != 0:
                    break
                chan.priority += 1
        except DialplanError as exc:
            log.error("%s: %s; ending the call", chan.name, exc)
            if not chan.hangupcause:
                chan.hangupcause = 16
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: simulator error; ending the call", chan.name)
        if not chan.hangupcause and not chan.hangup_requested:
            chan.hangupcause = 16  # the dialplan ended the call itself
        if chan.alive:
            await self.pbx_end(chan, soft=soft)

    async def pbx_end(self, chan: Channel, soft: bool = True) -> None:
        """What Asterisk does when a channel's dialplan ends: soft hang-up, `h` extension, handlers."""
        if soft:
            chan.soft_hangup(SOFTHANGUP_APPUNLOAD)
            if self.dialplan.exists(chan.context, "h", 1):
                await self.run_h_extension(chan)
        await self.run_hangup_handlers(chan)
        chan.hangup()

    async def run_h_extension(self, chan: Channel) -> None:
        chan.exten, chan.priority = "h", 1
        chan.in_hangup_handler = True  # waits end at once and the CDR keeps the call's last application
        try:
            while True:
                ext = self.dialplan.find_extension(chan.context, "h")
                prio = ext.priorities.get(chan.priority) if ext else None
                if prio is None or await self.apps.run(chan, prio.app, prio.data, source=prio.source) != 0:
                    break
                chan.priority += 1
        except DialplanError as exc:
            log.error("%s: h extension: %s", chan.name, exc)
        finally:
            chan.in_hangup_handler = False

    async def run_hangup_handlers(self, chan: Channel) -> None:
        while chan.hangup_handlers:
            handler = chan.hangup_handlers.pop()
            chan.emit("HangupHandlerRun", "dialplan,all", f"Handler: {handler}\r\n")
            saved = (chan.context, chan.exten, chan.priority)
            chan.in_hangup_handler = True
            try:
                await self.apps.run_subroutine(chan, handler, [])
            except DialplanError as exc:
                log.error("%s: hangup handler %s: %s", chan.name, handler, exc)
            finally:
                chan.in_hangup_handler = False
                chan.context, chan.exten, chan.priority = saved

    async def stay_in_action_bridge(self, chan: Channel, bridge: Bridge) -> None:
        """A channel the Bridge action took out of its dialplan; it resumes at the next priority."""
        while (
            chan.alive
            and not chan.hangup_requested
            and chan.async_goto is None
            and chan.bridge is bridge
            and len(bridge.members) >= 2
            and not bridge.ending
        ):
            await bridge.wait_change(None)
        sound, chan.limit_end_sound = chan.limit_end_sound, None
        if sound and chan.bridge is bridge and not chan.hangup_requested:
            with contextlib.suppress(Interrupted):  # a party that hears the timeout file leaves last
                await self.apps.stream(chan, sound)
        if chan.bridge is bridge:
            bridge.clear_peers()
            bridge.leave(chan)
        if chan.cdr.enabled:  # the pair's record ends here; the dialplan after the bridge gets its own
            chan.cdr.close_dial(None)
        elif not chan.hangup_requested:
            # Channel2 had no record of its own in the bridge; the dialplan it runs after it gets one
            # (bridge-action-absolute-timeout: the agent goes on when the caller's time is up).
            chan.cdr.restart()
        if not bridge.members:
            bridge.destroy()
        if chan.hangup_requested and not chan.hangupcause:
            chan.hangupcause = 16

    def action_bridge(self, a: Channel, b: Channel) -> None:
        bridge = Bridge(self)
        for chan in (a, b):
            if chan.bridge is not None:
                chan.bridge.leave(chan)
            chan.stop_moh()  # leaving MusicOnHold: its Stop comes before the BridgeEnter
            # Taken out of its application: CoreShowChannels shows none while it is bridged.
            chan.current_app = chan.current_data = ""
            chan.priority += 1
            bridge.enter(chan)
            chan.pending_bridge = bridge
            chan.wake("interrupt")
        bridge.set_peers()
        # One record covers the pair: Channel1's, whichever channel is older (q-callback-key).
        a.cdr.current.dstchannel = b.name
        b.cdr.enabled = False
        # Each learns the other as its connected line; a Local ;1's far half then shows it as its
        # caller ID (q-callback-key).
        for chan, other in ((b, a), (a, b)):
            if (chan.conn_num, chan.conn_name) != (other.cid_num, other.cid_name):
                chan.set_connected(other.cid_num, other.cid_name)
                peer = chan.local_peer
                if peer is not None and peer.alive:
                    peer.set_callerid(other.cid_num, other.cid_name)
        for chan in (a, b):
            if chan.pbx_task is None or chan.pbx_task.done():
                chan.pbx_task = self.spawn(self.run_pbx(chan), name=f"pbx {chan.name}")

    def redirect(self, chan: Channel, context: str, exten: str, priority: int) -> None:
        chan.stop_moh()  # Asterisk 22 (q-announce): MusicOnHoldStop at the old place, then the new one
        chan.async_goto = (context, exten, priority)
        if chan.pbx_task is None or chan.pbx_task.done():
            # A channel running no dialplan (a Dial's callee): it leaves its bridge and starts one.
            chan.interrupt()
            chan.pbx_task = self.spawn(self.run_pbx(chan), name=f"pbx {chan.name}")
        else:
            chan.interrupt()

    def absolute_timeout(self, chan: Channel, seconds: float) -> None:
        if chan.timeout_handle is not None:
            chan.timeout_handle.cancel()
            chan.timeout_handle = None
        if seconds <= 0:
            return

        def expire() -> None:
            chan.timeout_handle = None
            if not chan.alive:
                return
            # A bridged channel is hung up at once, its T extension unrun (bridge-action-absolute-timeout).
            if chan.bridge is None and self.dialplan.exists(chan.context, "T", 1):
                log.info("%s: absolute timeout: on to the T extension", chan.name)
                self.redirect(chan, chan.context, "T", 1)
                return
            # No cause is set: a channel in no bridge ends with Cause 0; a bridge sets 16 as it ends.
            log.info("%s: absolute timeout", chan.name)
            chan.soft_hangup(SOFTHANGUP_TIMEOUT, event=False)

        chan.timeout_handle = asyncio.get_running_loop().call_later(self.real(seconds), expire)

    # -- shutdown --------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        for chan in list(self.channels.values()):
            if chan.monitor is not None:
                chan.monitor.close()  # recordings of calls still up are written as far as they got
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
