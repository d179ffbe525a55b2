"""Channels, Local channel pairs, bridges, hang-up causes and call detail records.

The behaviour mirrors what the reference traces show of Asterisk 22: which request events precede
a Hangup, how a Local pair passes state, media and hang-ups between its halves, when a CDR forks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from .dialplan import Dialplan, VariableScope

log = logging.getLogger("pbxsim.channels")

STATE_DOWN, STATE_RING, STATE_RINGING, STATE_UP, STATE_BUSY = 0, 4, 5, 6, 7
STATE_DESC = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
    8: "Dialing Offhook",
    9: "Pre-ring",
}

CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    27: "Destination out of order",
    28: "Invalid number format (incomplete number)",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    58: "Bearer capability not available",
    66: "Channel not implemented",
    127: "Interworking, unspecified",
}
CAUSE_NAMES = {
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "CALL_REJECTED": 21,
    "CONGESTION": 34,
    "UNALLOCATED": 1,
    "NORMAL": 16,
    "BUSY": 17,
}

# Soft hang-up flags as Asterisk reports them in SoftHangupRequest.
SOFTHANGUP_TIMEOUT = 8
SOFTHANGUP_APPUNLOAD = 16
SOFTHANGUP_EXPLICIT = 32

# Controls a called channel passes back to whoever dials it.
CONTROL_HANGUP, CONTROL_RINGING, CONTROL_ANSWER, CONTROL_BUSY, CONTROL_CONGESTION, CONTROL_PROGRESS = (
    1,
    3,
    4,
    5,
    8,
    14,
)
CONTROL_INTERRUPT = -1  # not a control frame: the dialling channel was redirected


class Switch(Protocol):
    """What a channel needs of the exchange it lives in (core.PBX): the clock, the event bus,
    the registry and the dialplan functions. Declared here so that channels import no layer above."""

    dialplan: Dialplan
    time_scale: float

    def now(self) -> float: ...

    def real(self, sim_seconds: float) -> float: ...

    def emit(self, event: str, privilege: str, body: str) -> None: ...

    def unregister(self, chan: Channel) -> None: ...

    def read_function(self, chan: Channel, name: str, args: str) -> str: ...

    def absolute_timeout(self, chan: Channel, seconds: float) -> None: ...


def cdr_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


@dataclass
class CdrRecord:
    start: float
    answer: float | None = None
    end: float | None = None
    lastapp: str = ""
    lastdata: str = ""
    destination: str = ""
    dcontext: str = ""
    dstchannel: str = ""
    disposition: str | None = None
    closed: bool = False


class CallDetail:
    """The CDR records of one channel; Asterisk forks a new one when the dialplan runs on after a Dial."""

    def __init__(self, chan: Channel):
        self.chan = chan
        self.enabled = True
        self.restart_pending = False
        self.records = [CdrRecord(start=chan.created, destination=chan.exten, dcontext=chan.context)]

    @property
    def current(self) -> CdrRecord:
        return self.records[-1]

    def on_app(self, app: str, data: str) -> None:
        rec = self.current
        now = self.chan.pbx.now()
        if (rec.closed or self.restart_pending) and app.lower() == "hangup":
            # Asterisk's CDR engine ignores a channel the Hangup application is ending
            # (AST_SOFTHANGUP_HANGUP_EXEC): no record for it after a bridge (q-callback-key).
            return
        if self.restart_pending:
            self.restart_pending, self.enabled = False, True
            self.records = [CdrRecord(start=now, answer=now if self.chan.state == STATE_UP else None)]
            rec = self.current
        if rec.closed:
            rec = CdrRecord(start=now, answer=now if self.chan.state == STATE_UP else None)
            self.records.append(rec)
        rec.lastapp, rec.lastdata = app, data
        rec.destination, rec.dcontext = self.chan.exten, self.chan.context

    def on_answer(self, now: float) -> None:
        for rec in self.records:
            if rec.answer is None and not rec.closed:
                rec.answer = now

    def fork_dial(self, destinations: list[str]) -> list[CdrRecord]:
        """One record per destination a Dial rings, all starting where the Dial's record started."""
        first = self.current
        first.dstchannel = destinations[0]
        for name in destinations[1:]:
            self.records.append(dataclasses.replace(first, dstchannel=name))
        return self.records[-len(destinations) :]

    def close(self, rec: CdrRecord, disposition: str | None) -> None:
        if disposition:
            rec.disposition = disposition
        rec.end = self.chan.pbx.now()
        rec.closed = True

    def restart(self) -> None:
        """Record again from the next application: a channel whose time so far another channel's
        record covered (Channel2 of a Bridge action) and that runs dialplan after it."""
        self.restart_pending = True

    def close_dial(self, disposition: str | None) -> None:
        self.close(self.current, disposition)

    def finish(self) -> list[str]:
        if not self.enabled:
            return []
        chan = self.chan
        now = chan.pbx.now()
        bodies = []
        for rec in self.records:
            end = rec.end if rec.end is not None else now
            if rec.disposition:
                disposition = rec.disposition
            elif rec.answer is not None:
                disposition = "ANSWERED"
            else:
                disposition = {
                    17: "BUSY",
                    34: "CONGESTION",
                    19: "NO ANSWER",
                    16: "NO ANSWER",
                    18: "NO ANSWER",
                    26: "NO ANSWER",
                }.get(chan.hangupcause, "FAILED")
            duration = int(end - rec.start)
            billable = int(end - rec.answer) if rec.answer is not None else 0
            bodies.append(
                f"AccountCode: {chan.accountcode}\r\nSource: {chan.cid_num}\r\n"
                f"Destination: {rec.destination}\r\n"
                f'DestinationContext: {rec.dcontext}\r\nCallerID: "{chan.cid_name}" <{chan.cid_num}>\r\n'
                f"Channel: {chan.name}\r\nDestinationChannel: {rec.dstchannel}\r\n"
                f"LastApplication: {rec.lastapp}\r\nLastData: {rec.lastdata}\r\n"
                f"StartTime: {cdr_time(rec.start)}\r\nAnswerTime: {cdr_time(rec.answer)}\r\n"
                f"EndTime: {cdr_time(end)}\r\nDuration: {max(duration, 0)}\r\n"
                f"BillableSeconds: {max(billable, 0)}\r\nDisposition: {disposition}\r\n"
                f"AMAFlags: DOCUMENTATION\r\nUniqueID: {chan.uniqueid}\r\n"
                f"UserField: {chan.internal.get('cdr_userfield', '')}\r\n"
            )
        return bodies


class SubroutineDone(Exception):
    """Return() popped the frame of a subroutine the simulator itself started (hangup handler, U())."""


class Interrupted(Exception):
    """Raised out of an application when its channel is hung up or redirected."""


class Channel(VariableScope):
    def __init__(
        self,
        pbx: Switch,
        name: str,
        uniqueid: str,
        linkedid: str,
        context: str,
        exten: str,
        state: int,
        tech: str,
        hidden: bool = False,
    ):
        self.pbx = pbx
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.context = context
        self.exten = exten
        self.priority = 1
        self.state = state
        self.tech = tech
        self.hidden = hidden
        self.cid_num = ""
        self.cid_name = ""
        self.conn_num = ""
        self.conn_name = ""
        self.accountcode = ""
        self.language = "en"
        self.variables: dict[str, str] = {}
        self.inherit: dict[str, int] = {}
        self.internal: dict[str, str] = {}  # CDR user field, music class: not channel variables
        self.hangupcause = 0
        self.alive = True
        self.hangup_requested = False
        self.async_goto: tuple[str, str, int] | None = None
        self.pending_bridge: Bridge | None = None
        # Bridge() L(): the timeout file this channel hears before it leaves the bridge at the limit.
        self.limit_end_sound: str | None = None
        self.local_peer: Channel | None = None
        self.bridge: Bridge | None = None
        self.dial_queue: asyncio.Queue[int] | None = None
        # The one callee a Dial of this channel rings: Dial passes the caller's keys on to it.
        self.ringing_callee: Channel | None = None
        self.pbx_task: asyncio.Task | None = None
        self.current_app = ""
        self.current_data = ""
        self.created = pbx.now()
        self.created_mono = time.monotonic()
        self.answered_at: float | None = None
        self.digits: deque[str] = deque()
        self.hangup_handlers: list[str] = []
        self.gosub_stack: list[tuple[str, str, int, dict[str, str | None]]] = []
        self.playing = 0
        self.moh_class: str | None = None  # the music on hold class playing, if any
        self.media_seen = False
        self.monitor = None
        self.timeout_handle: asyncio.TimerHandle | None = None
        self.in_hangup_handler = False
        self._waiter: asyncio.Future | None = None
        self._wake_on: frozenset[str] = frozenset()
        self.cdr = CallDetail(self)

    # -- AMI snapshot ----------------------------------------------------------------------------

    def snapshot(self, prefix: str = "") -> str:
        p = prefix
        return (
            f"{p}Channel: {self.name}\r\n{p}ChannelState: {self.state}\r\n"
            f"{p}ChannelStateDesc: {STATE_DESC.get(self.state, 'Unknown')}\r\n"
            f"{p}CallerIDNum: {self.cid_num or '<unknown>'}\r\n"
            f"{p}CallerIDName: {self.cid_name or '<unknown>'}\r\n"
            f"{p}ConnectedLineNum: {self.conn_num or '<unknown>'}\r\n"
            f"{p}ConnectedLineName: {self.conn_name or '<unknown>'}\r\n"
            f"{p}Language: {self.language}\r\n{p}AccountCode: {self.accountcode}\r\n"
            f"{p}Context: {self.context}\r\n{p}Exten: {self.exten}\r\n{p}Priority: {self.priority}\r\n"
            f"{p}Uniqueid: {self.uniqueid}\r\n{p}Linkedid: {self.linkedid}\r\n"
        )

    def emit(self, event: str, privilege: str, extra: str = "") -> None:
        if not self.hidden:
            self.pbx.emit(event, privilege, self.snapshot() + extra)

    # -- state -----------------------------------------------------------------------------------

    def set_state(self, state: int) -> None:
        if state == self.state:
            return
        self.state = state
        if state == STATE_UP and self.answered_at is None:
            self.answered_at = self.pbx.now()
            self.cdr.on_answer(self.answered_at)
        self.emit("Newstate", "call,all")

    def set_callerid(self, num: str | None, name: str | None) -> None:
        if num is not None:
            self.cid_num = num
        if name is not None:
            self.cid_name = name
        self.emit("NewCallerid", "call,all", "CID-CallingPres: 0 (Presentation Allowed, Not Screened)\r\n")

    def set_connected(self, num: str, name: str) -> None:
        self.conn_num, self.conn_name = num, name
        self.emit("NewConnectedLine", "call,all")

    def set_variable(self, name: str, value: str, shown: str | None = None) -> None:
        bare = name.lstrip("_")
        if name.startswith("__"):
            self.inherit[bare] = 2
        elif name.startswith("_"):
            self.inherit[bare] = 1
        self.variables[bare] = value
        self.emit("VarSet", "dialplan,all", f"Variable: {shown or name}\r\nValue: {value}\r\n")

    def inheritable_variables(self) -> list[tuple[str, str]]:
        """Variables a channel this one dials inherits (`_X` once, `__X` for ever)."""
        return [
            ("__" + bare if level == 2 else bare, self.variables[bare])
            for bare, level in self.inherit.items()
            if bare in self.variables
        ]

    # -- variables and functions -----------------------------------------------------------------

    def get_variable(self, name: str) -> str | None:
        if name in self.variables:
            return self.variables[name]
        builtin = {
            "CHANNEL": self.name,
            "UNIQUEID": self.uniqueid,
            "EXTEN": self.exten,
            "CONTEXT": self.context,
            "PRIORITY": str(self.priority),
            "HANGUPCAUSE": str(self.hangupcause),
            "CALLERID(num)": self.cid_num,
            "CALLERIDNUM": self.cid_num,
            "CALLERIDNAME": self.cid_name,
            "LANGUAGE": self.language,
            "ACCOUNTCODE": self.accountcode,
            "LINKEDID": self.linkedid,
        }
        if name in builtin:
            return builtin[name]
        if name == "EPOCH":
            return str(int(self.pbx.now()))
        return self.pbx.dialplan.globals.get(name)

    def call_function(self, name: str, args: str) -> str:
        return self.pbx.read_function(self, name, args)

    def bridge_peer_name(self) -> str:
        if self.bridge is None:
            return ""
        return next((m.name for m in self.bridge.members if m is not self), "")

    # -- waiting ---------------------------------------------------------------------------------

    @property
    def interrupted(self) -> bool:
        if self.in_hangup_handler:
            return False
        return self.hangup_requested or self.async_goto is not None or self.pending_bridge is not None

    def wake(self, reason: str) -> None:
        w = self._waiter
        if w is not None and not w.done() and (reason in self._wake_on or reason == "interrupt"):
            w.set_result(reason)

    async def pause(self, seconds: float | None, *, on: frozenset[str] = frozenset()) -> str:
        """Wait `seconds` of simulated time; returns 'timeout', 'interrupt' or one of the `on` reasons."""
        if self.interrupted:
            return "interrupt"
        if "dtmf" in on and self.digits:
            return "dtmf"
        if seconds is not None and seconds <= 0:
            return "timeout"
        if self.in_hangup_handler and self.hangup_requested:
            return "timeout"
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiter = fut
        self._wake_on = on
        handle = None
        if seconds is not None:
            handle = loop.call_later(self.pbx.real(seconds), _resolve, fut, "timeout")
        try:
            return await fut
        finally:
            if handle is not None:
                handle.cancel()
            self._waiter = None

    async def sleep(self, seconds: float | None) -> bool:
        """Sleep through simulated time; False when the channel was interrupted meanwhile."""
        if seconds is None:
            return await self.pause(None) != "interrupt"
        deadline = time.monotonic() + self.pbx.real(seconds)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            reason = await self.pause(remaining * self.pbx.time_scale)
            if reason == "interrupt":
                return False
            if reason == "timeout":
                return True

    async def wait_digit(self, seconds: float | None) -> str | None:
        """The next DTMF digit within `seconds` (None: forever); None on timeout, raises on interrupt."""
        reason = await self.pause(seconds, on=frozenset({"dtmf"}))
        if reason == "dtmf" and self.digits:
            return self.digits.popleft()
        if reason == "interrupt":
            raise Interrupted
        return None

    # -- media and DTMF --------------------------------------------------------------------------

    def media_started(self) -> None:
        """This channel starts sending audio: an Answer waiting on the far side may return."""
        for target in self.media_targets():
            target.media_seen = True
            target.wake("media")

    def media_targets(self) -> list[Channel]:
        out = []
        if self.local_peer is not None and self.local_peer.alive:
            out.append(self.local_peer)
        if self.bridge is not None:
            for member in self.bridge.members:
                if member is not self and member.local_peer is not None and member.local_peer.alive:
                    out.append(member.local_peer)
        return out

    def start_moh(self, music_class: str) -> None:
        if self.moh_class is None:
            self.moh_class = music_class or self.internal.get("musicclass") or "default"
            self.playing += 1
            self.media_started()
            self.emit("MusicOnHoldStart", "call,all", f"Class: {self.moh_class}\r\n")

    def stop_moh(self) -> None:
        if self.moh_class is not None:
            self.moh_class = None
            self.playing -= 1
            self.emit("MusicOnHoldStop", "call,all")

    async def send_dtmf(self, digit: str, duration_ms: int) -> None:
        receivers = self.dtmf_receivers()
        for r in receivers:
            r.emit("DTMFBegin", "dtmf,all", f"Digit: {digit}\r\nDirection: Received\r\n")
        await self.sleep(duration_ms / 1000)
        for r in receivers:
            if r.alive:
                r.emit(
                    "DTMFEnd",
                    "dtmf,all",
                    f"Digit: {digit}\r\nDurationMs: {duration_ms}\r\nDirection: Received\r\n",
                )
                r.digits.append(digit)
                r.wake("dtmf")

    def dtmf_receivers(self) -> list[Channel]:
        peer = self.local_peer
        if peer is None or not peer.alive:
            return []
        if peer.bridge is None:
            callee = peer.ringing_callee
            if callee is not None and callee.local_peer is not None and callee.local_peer.alive:
                return [peer, callee.local_peer]
            return [peer]
        # A bridge passes the digit on: each other member sends it out to its own far end.
        out = [peer]
        for member in peer.bridge.members:
            if member is not peer and member.local_peer is not None and member.local_peer.alive:
                out.append(member.local_peer)
        return out

    # -- controls from the far end of a Local pair -----------------------------------------------

    def indicate(self, control: int) -> None:
        """This (called) half signals ringing/answer/busy/congestion towards whoever dialled its pair."""
        peer = self.local_peer
        if peer is None or not peer.alive:
            return
        if control == CONTROL_RINGING and peer.state in (STATE_DOWN, STATE_RING):
            peer.set_state(STATE_RINGING)
        elif control == CONTROL_ANSWER:
            peer.set_state(STATE_UP)
        if peer.dial_queue is not None:
            peer.dial_queue.put_nowait(control)

    # -- hanging up ------------------------------------------------------------------------------

    def queue_hangup(self, cause: int) -> None:
        """Asterisk's ast_queue_hangup_with_cause: a HangupRequest, then the channel's owner notices."""
        if not self.alive:
            return
        self.emit("HangupRequest", "call,all", f"Cause: {cause}\r\n")
        if cause:
            self.hangupcause = cause
        self._mark_hangup()

    def soft_hangup(self, flag: int, *, event: bool = True) -> None:
        if not self.alive:
            return
        if event:
            self.emit("SoftHangupRequest", "call,all", f"Cause: {flag}\r\n")
        self._mark_hangup()

    def _mark_hangup(self) -> None:
        self.hangup_requested = True
        self.interrupt()

    def interrupt(self) -> None:
        """Wake whatever the channel is doing: a wait, a Dial in progress, a bridge."""
        self.wake("interrupt")
        if self.dial_queue is not None:
            self.dial_queue.put_nowait(CONTROL_HANGUP if self.hangup_requested else CONTROL_INTERRUPT)
        if self.bridge is not None:
            self.bridge.changed()

    def hangup(self) -> None:
        """Destroy the channel: tell the other Local half, emit Hangup and the CDRs."""
        if not self.alive:
            return
        # Music from StartMusicOnHold still playing (a caller gone during WaitExten) stops first.
        self.stop_moh()
        self.alive = False
        self.hangup_requested = True
        self.wake("interrupt")
        if self.timeout_handle is not None:
            self.timeout_handle.cancel()
        if self.monitor is not None:
            self.monitor.close()
        if self.bridge is not None:
            self.bridge.leave(self)
        peer = self.local_peer
        if peer is not None and peer.alive:
            peer.queue_hangup(self.hangupcause)
        self.emit(
            "Hangup",
            "call,all",
            f"Cause: {self.hangupcause}\r\nCause-txt: {CAUSE_TEXT.get(self.hangupcause, 'Unknown')}\r\n",
        )
        for body in self.cdr.finish():
            if not self.hidden:
                self.pbx.emit("Cdr", "cdr,all", body)
        self.pbx.unregister(self)
        log.info("%s hung up (cause %s)", self.name, self.hangupcause)


def _resolve(fut: asyncio.Future, value: str) -> None:
    if not fut.done():
        fut.set_result(value)


class Bridge:
    def __init__(self, pbx: Switch):
        self.pbx = pbx
        self.id = str(uuid.uuid4())
        self.members: list[Channel] = []
        self.destroyed = False
        # Bridge() L()'s limit reached: its members leave (after their timeout file).
        self.ending = False
        self._change = asyncio.Event()
        self.pbx.emit("BridgeCreate", "call,all", self._block())

    def _block(self) -> str:
        return (
            f"BridgeUniqueid: {self.id}\r\nBridgeType: basic\r\nBridgeTechnology: simple_bridge\r\n"
            f"BridgeCreator: <unknown>\r\nBridgeName: <unknown>\r\nBridgeNumChannels: {len(self.members)}\r\n"
            f"BridgeVideoSourceMode: none\r\n"
        )

    def enter(self, chan: Channel) -> None:
        self.members.append(chan)
        chan.bridge = self
        # As Asterisk 12+ does: the channels of a bridge share its oldest Linkedid (that of the
        # channel created first), so a channel joining an older call becomes part of it.
        oldest = min(self.members, key=lambda member: member.created_mono).linkedid
        for member in self.members:
            member.linkedid = oldest
        if not chan.hidden:
            self.pbx.emit("BridgeEnter", "call,all", self._block() + chan.snapshot())
        self.changed()

    def set_peers(self) -> None:
        if len(self.members) == 2:
            a, b = self.members
            a.set_variable("BRIDGEPEER", b.name)
            b.set_variable("BRIDGEPEER", a.name)

    def clear_peers(self) -> None:
        for m in self.members:
            if m.variables.get("BRIDGEPEER"):
                m.set_variable("BRIDGEPEER", "")

    def leave(self, chan: Channel) -> None:
        if chan not in self.members:
            return
        self.members.remove(chan)
        chan.bridge = None
        if not chan.hidden:
            self.pbx.emit("BridgeLeave", "call,all", self._block() + chan.snapshot())
        self.changed()

    def destroy(self) -> None:
        if self.destroyed:
            return
        for m in list(self.members):
            self.leave(m)
        self.destroyed = True
        self.pbx.emit("BridgeDestroy", "call,all", self._block())

    def changed(self) -> None:
        self._change.set()

    async def wait_change(self, seconds: float | None) -> bool:
        """Wait for a member to leave or be hung up; False on timeout."""
        self._change.clear()
        try:
            if seconds is None:
                await self._change.wait()
            else:
                await asyncio.wait_for(self._change.wait(), self.pbx.real(seconds))
            return True
        except TimeoutError:
            return False
