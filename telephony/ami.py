"""One AMI session to one Asterisk, on top of panoramisk's Manager.

What panoramisk leaves to us, and this class adds:
- reconnect with exponential backoff after a drop *or a failed login*, logged, capped at
  backoff_max (3 s by default): a PBX back from an outage is found within seconds, whatever its length;
- actions are never re-sent after a reconnect (panoramisk would replay an
  Originate that got no answer, ringing someone twice); their callers get
  `AmiConnectionLost` instead;
- the result of an Async Originate ([Response, OriginateResponse]) turned into
  an `OriginateOutcome`.

This is the one module that imports panoramisk (pinned in requirements/base.txt). What it
relies on of panoramisk, beyond the documented API, is listed in tests/telephony/test_panoramisk.py,
one test per behaviour, so an upgrade that changes any of it fails a test by name:
- Manager looks up connection_made, connection_lost and login on the instance when it needs
  them, so this class replaces them there (panoramisk has no hook that stops its own reconnect);
- Manager.close() closes quietly: no connection_lost follows a close it was asked for;
- `manager.protocol.transport` is the asyncio transport of the live connection (`_transport`);
- the protocol is made by the `protocol_factory` of Manager's config, and its `data_received`,
  `queue` (the unfinished frame), `responses` (the actions awaiting an answer), `handle_message`
  and `version` are AMIProtocol's, which `_LeanProtocol` reuses (the lean event path below).

The lean event path: a busy Asterisk sends tens of thousands of events a second, many of which
nobody here reads (VarSet, Newexten, DialState, the Local channel's own events...). panoramisk
would parse each into a case-insensitive Message, match it against every registered pattern and
hand it on, to be copied into a dict. `_LeanProtocol` reads the frame's first line instead: an
event nobody asked for (`events_wanted`) is dropped before it is parsed; one asked for is parsed
once, into the plain dict the handler keeps. Answers to actions, events that may belong to an
action awaiting its answer (they carry an ActionID), and Shutdown still go through panoramisk.
"""

import asyncio
import dataclasses
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from urllib.parse import unquote

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from panoramisk.utils import IdGenerator

log = logging.getLogger(__name__)


class AmiError(Exception):
    """Asterisk answered an action with an error."""

    def __init__(self, action, response):
        self.action = action
        self.response = response
        super().__init__(f"{action}: {response.get('Message', 'error')}")


class AmiConnectionLost(Exception):
    """The session went down or Asterisk did not answer in time: the action may or may not have run."""


class AmiNotConnected(AmiConnectionLost):
    """The session is down: the action was not sent."""


class OriginateOutcomeUnknown(AmiConnectionLost):
    """The Originate was queued, but its OriginateResponse did not come in time."""


NEVER = 10**9  # seconds

# A line break would start another header or a whole other action; NUL and the other control
# characters have no business in a header either.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def reset_action_ids():
    """panoramisk draws ActionIDs from one uuid set at import: a forked child needs its own, or
    its answers could be taken for the parent's."""
    IdGenerator.reset(uid=str(uuid.uuid4()))


class _Nothing:
    """panoramisk's forgetable_actions: we forget every action on a drop."""

    def __contains__(self, item):
        return True


# OriginateResponse Reason (Asterisk's AST_CONTROL_* outcome of the dial).
OUTCOME_BY_REASON = {4: "answered", 3: "no_answer", 5: "busy", 8: "congestion", 0: "failed", 1: "failed"}


@dataclasses.dataclass(frozen=True)
class OriginateOutcome:
    uniqueid: str
    reason: int
    outcome: str  # answered, no_answer, busy, congestion, failed
    channel: str

    @classmethod
    def from_event(cls, event) -> "OriginateOutcome":
        try:
            reason = int(event.get("Reason", 0))
        except ValueError:
            reason = 0
        return cls.of(event.get("Uniqueid", ""), reason, event.get("Channel", ""))

    @classmethod
    def of(cls, uniqueid: str, reason: int, channel: str = "") -> "OriginateOutcome":
        return cls(
            uniqueid=uniqueid, reason=reason, outcome=OUTCOME_BY_REASON.get(reason, "failed"), channel=channel
        )


_EOL = "\r\n"
_FRAME_END = "\r\n\r\n"
_EVENT = "Event: "


def parse_event(frame: str) -> dict:
    """An event frame's headers as a plain dict, as panoramisk's Message.from_line reads them: a
    header repeated (ChanVariable) becomes a list, a line without ": " is skipped, Result unquoted.
    Only Message's "content" (the body of a `Response: Follows`, empty in an event) is not there."""
    lines = frame.split(_EOL)
    if "esult" not in frame:  # no Result header to unquote (Message.quoted_keys)
        pairs = [line.split(": ", 1) for line in lines if ": " in line]
        headers = dict(pairs)
        if len(headers) == len(pairs):  # no header repeated
            return headers
    headers = {}
    for line in lines:
        name, sep, value = line.partition(": ")
        if not sep:
            continue
        if name.lower() in Message.quoted_keys:
            value = unquote(value).strip()
        if name in headers:
            previous = headers[name]
            if isinstance(previous, list):
                previous.append(value)
            else:
                headers[name] = [previous, value]
        else:
            headers[name] = value
    return headers


class _LeanProtocol(AMIProtocol):
    """panoramisk's protocol, with the events handed to the AmiClient as plain dicts, those nobody
    asked for dropped unparsed (the module's docstring)."""

    def __init__(self, client: "AmiClient"):
        self.client = client
        self.greeted = False

    def data_received(self, data):
        if not self.greeted or getattr(self.factory, "save_stream", None):
            # The first read holds the banner, which panoramisk reads (and its stream recording).
            self.greeted = True
            return super().data_received(data)
        text = data.decode(self.encoding, "ignore")
        if self.queue:
            text = self.queue.popleft() + text
        frames = text.split(_FRAME_END)
        self.queue.append(frames.pop())
        client = self.client
        wanted = client.events_wanted
        handler = client.on_event
        received = False
        for frame in frames:
            frame = frame.strip()
            if frame.startswith(_EVENT):
                received = True
                end = frame.find(_EOL)
                name = frame[7:] if end == -1 else frame[7:end]
                # An event with an ActionID may be part of an answer (an Originate's
                # OriginateResponse, a list's items): panoramisk matches those to their action.
                if name != "Shutdown" and not (self.responses and "ActionID: " in frame):
                    if handler is not None and (wanted is None or name in wanted):
                        handler(client, parse_event(frame))
                    else:
                        client.events_dropped += 1
                    continue
            message = Message.from_line(frame)
            if message is not None:
                self.handle_message(message)
        if received:
            client.last_event_at = time.time()


@dataclasses.dataclass(frozen=True)
class AmiEndpoint:
    name: str
    host: str
    port: int
    username: str
    secret: str = dataclasses.field(repr=False)


class AmiClient:
    """A persistent, self-healing AMI session. Create and use it inside one event loop."""

    def __init__(
        self,
        endpoint: AmiEndpoint,
        *,
        on_event: Callable | None = None,
        on_state: Callable | None = None,
        events: bool | None = None,
        events_wanted: frozenset[str] | None = None,
        backoff_min: float = 0.5,
        backoff_max: float = 3.0,
        ping_interval: float = 20.0,
        login_timeout: float = 10.0,
    ):
        self.endpoint = endpoint
        self.on_event = on_event
        self.on_state = on_state
        # The names of the events on_event is given (None: every event); the others are dropped unparsed.
        self.events_wanted = events_wanted
        self.events_dropped = 0
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.ping_interval = ping_interval
        self.login_timeout = login_timeout
        self._watchdog: asyncio.Task | None = None
        self._connecting: asyncio.Task | None = None
        self._login_timer: asyncio.TimerHandle | None = None
        self.connected = asyncio.Event()
        self.last_event_at: float | None = None
        self._backoff = backoff_min
        self._closing = False
        self._retry: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Future] = set()
        self._loop = asyncio.get_running_loop()
        self.manager = Manager(
            loop=self._loop,
            host=endpoint.host,
            port=endpoint.port,
            username=endpoint.username,
            secret=endpoint.secret,
            events="on" if (on_event if events is None else events) else "off",
            # panoramisk's pinger never checks for the Pong; our watchdog does.
            ping_delay=NEVER,
            ping_interval=NEVER,
            forgetable_actions=_Nothing(),
            on_login=self._logged_in,
            protocol_factory=lambda: _LeanProtocol(self),
        )
        # panoramisk schedules its own reconnects (and would call on_disconnect); ours back off
        # and retry failed logins too.
        self.manager.connection_lost = self._connection_lost
        self.manager.connection_made = self._connection_made
        self.manager.login = self._login_answered
        if on_event:
            self.manager.register_event("*", self._dispatch)

    # -- lifecycle -------------------------------------------------------------

    def start(self):
        self._connect()
        self._watchdog = self._loop.create_task(self._watch())

    def _connect(self):
        self._set_state("connecting", "")
        # The login timeout counts from this attempt: an outage before it does not shorten it.
        self._login_timer = self._loop.call_later(
            self.login_timeout, self._abort, f"no login answer within {self.login_timeout:g} s"
        )
        self._connecting = self.manager.connect()

    async def _watch(self):
        """Drop a session that stopped answering (a PBX gone silent keeps TCP open for minutes);
        the reconnect follows."""
        while not self._closing:
            await asyncio.sleep(self.ping_interval)
            if not self.connected.is_set() or self._closing:
                continue
            try:
                await self.send({"Action": "Ping"}, timeout=self.login_timeout)
            except AmiConnectionLost:
                if self.connected.is_set():
                    self._abort("no answer to Ping")

    def _abort(self, why: str):
        """Drop the connection, or the attempt to make one, and reconnect."""
        log.warning("AMI %s: %s; dropping the connection", self.endpoint.name, why)
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()  # a connect that hangs (a PBX host gone) must not land later
        transport = self._transport()
        self.manager.close()  # quiet: no connection_lost follows, so _session_down is ours to call
        if transport is not None:
            transport.abort()  # close() would wait to flush to a PBX that stopped reading
        self._session_down(why)

    def _transport(self) -> asyncio.Transport | None:
        # panoramisk has no public accessor for its connection; its protocol keeps the transport.
        transport = getattr(self.manager.protocol, "transport", None)
        return None if transport is None or transport.is_closing() else transport

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self):
        self._closing = True
        self._cancel_login_timer()
        if self._retry:
            self._retry.cancel()
        if self._watchdog:
            self._watchdog.cancel()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        self.manager.close()
        self._fail_pending("the AMI session was closed")
        self.connected.clear()

    def _cancel_login_timer(self):
        if self._login_timer is not None:
            self._login_timer.cancel()
            self._login_timer = None

    def _connection_made(self, future):
        if future.cancelled():  # _abort gave up on this attempt and scheduled the next
            return
        try:
            future.result()
        except OSError as exc:
            self._session_down(f"cannot connect: {exc}")
            return
        Manager.connection_made(self.manager, future)

    def _login_answered(self, future):
        self._cancel_login_timer()
        try:
            authenticated = Manager.login(self.manager, future)
        except Exception as exc:  # the future itself failed: the connection went away
            authenticated, reason = False, str(exc) or type(exc).__name__
        else:
            reason = future.result().get("Message", "login refused")
        if not authenticated:
            log.error("AMI %s: login as %r refused: %s", self.endpoint.name, self.endpoint.username, reason)
            self.manager.close()
            self._session_down(f"login refused: {reason}")
        return authenticated

    def _logged_in(self, manager):
        self._backoff = self.backoff_min
        self.connected.set()
        log.info("AMI %s: connected to %s:%s", self.endpoint.name, self.endpoint.host, self.endpoint.port)
        self._set_state("connected", "")

    def _connection_lost(self, exc):
        self.manager.close()  # cancels panoramisk's pinger; the protocol is closed already
        self._session_down(f"connection lost: {exc}" if exc else "connection closed by the PBX")

    def _session_down(self, why: str):
        self._fail_pending("the AMI connection was lost")
        self._schedule_reconnect(why)

    def _schedule_reconnect(self, why: str):
        self._cancel_login_timer()
        self.connected.clear()
        if self._closing:
            return
        # Jittered, so many sessions do not retry in step; never past the cap.
        delay = min(self._backoff * random.uniform(0.8, 1.2), self.backoff_max)
        self._backoff = min(self._backoff * 2, self.backoff_max)
        log.warning("AMI %s: %s; reconnecting in %.1f s", self.endpoint.name, why, delay)
        self._set_state("down", why)
        if self._retry:
            self._retry.cancel()
        self._retry = self._loop.call_later(delay, self._reconnect)

    def _reconnect(self):
        self._retry = None
        if not self._closing:
            self._connect()

    def _set_state(self, state: str, error: str):
        if self.on_state:
            self.on_state(self, state, error)

    def _fail_pending(self, why: str):
        for future in list(self._pending):
            if not future.done():
                future.set_exception(AmiConnectionLost(why))
        self._pending.clear()

    def pause_reading(self):
        """Read nothing more from the PBX until resume_reading: back-pressure for a fold that lags."""
        transport = self._transport()
        if transport is not None:
            transport.pause_reading()

    def resume_reading(self):
        transport = self._transport()
        if transport is not None:
            transport.resume_reading()

    # -- events ----------------------------------------------------------------

    def _dispatch(self, manager, message):
        """An event panoramisk parsed (one with an ActionID that answered no action, Shutdown)."""
        self.last_event_at = time.time()
        event = dict(message)
        if self.events_wanted is None or event.get("Event") in self.events_wanted:
            self.on_event(self, event)
        else:
            self.events_dropped += 1

    # -- actions ---------------------------------------------------------------

    async def send(self, action: dict, *, timeout: float = 10.0):
        """Send one action and return its response (a list for actions answered by several frames)."""
        for key, value in action.items():
            for item in value if isinstance(value, list | tuple) else [value]:
                if _CONTROL_CHARACTER.search(str(key)) or _CONTROL_CHARACTER.search(str(item)):
                    name = action.get("Action")
                    raise ValueError(
                        f"AMI {name}: header {key!r} holds a line break or another control character"
                    )
        if not self.connected.is_set():
            raise AmiNotConnected(f"AMI {self.endpoint.name} is not connected")
        if not isinstance(action, Action):
            action = Action(action)
        future = self.manager.send_action(action, as_list=action.as_list)
        self._pending.add(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise AmiConnectionLost(f"AMI {self.endpoint.name}: no answer to {action['Action']}") from None
        finally:
            self._pending.discard(future)

    async def send_checked(self, action: dict, *, timeout: float = 10.0):
        response = await self.send(action, timeout=timeout)
        first = response[0] if isinstance(response, list) else response
        if first.get("Response") not in ("Success", "Follows", "Goodbye"):
            raise AmiError(action["Action"], first)
        return response

    async def originate_queued(self, action: dict, *, timeout: float = 10.0):
        """Originate (always Async) and return once Asterisk has queued it; the outcome comes as an event."""
        action = Action({**action, "Action": "Originate", "Async": "true"}, as_list=False)
        response = await self.send(action, timeout=timeout)
        if response.get("Response") != "Success":
            raise AmiError("Originate", response)
        return response

    async def originate(self, action: dict, *, outcome_timeout: float) -> OriginateOutcome:
        """Originate (always Async) and wait for its OriginateResponse (needs a session with events on)."""
        action = {**action, "Action": "Originate", "Async": "true"}
        response = await self.send(action, timeout=outcome_timeout)
        frames = response if isinstance(response, list) else [response]
        if frames[0].get("Response") != "Success":
            raise AmiError("Originate", frames[0])
        for frame in frames[1:]:
            if frame.get("Event") == "OriginateResponse":
                # panoramisk hands our own OriginateResponse to us alone, not to the event handlers.
                if self.on_event and (
                    self.events_wanted is None or "OriginateResponse" in self.events_wanted
                ):
                    self.on_event(self, dict(frame))
                return OriginateOutcome.from_event(frame)
        raise AmiConnectionLost("Originate queued but no OriginateResponse arrived")
