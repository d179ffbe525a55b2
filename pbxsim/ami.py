"""The Asterisk Manager Interface: framing, login, permissions, event delivery and the actions."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .channels import SOFTHANGUP_EXPLICIT
from .core import OriginateRequest
from .dialplan import DialplanError, split_args, substitute

if TYPE_CHECKING:
    from .channels import Channel
    from .core import PBX

log = logging.getLogger("pbxsim.ami")

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
MAX_FRAME = 64 * 1024
MAX_LINE = 1024  # Asterisk's manager line buffer
MAX_PENDING_OUTPUT = 16 * 1024 * 1024
FAILED_LOGIN_DELAY = 1.0  # real seconds, like Asterisk's brute-force brake; not time-scaled
ALL_CLASSES = frozenset(
    {
        "system",
        "call",
        "log",
        "verbose",
        "command",
        "agent",
        "user",
        "config",
        "dtmf",
        "reporting",
        "cdr",
        "dialplan",
        "originate",
        "agi",
        "cc",
        "aoc",
        "test",
        "security",
        "message",
    }
)


@dataclass(frozen=True)
class EventFilter:
    """One `eventfilter` line of a manager.conf user.

    `eventfilter = Event: Newchannel` (a regular expression searched in the whole event text,
    `!` in front to exclude), or Asterisk 20's
    `eventfilter(action(include),name(Newchannel),header(Channel),method(starts_with)) = PJSIP/`.
    """

    include: bool
    pattern: str
    name: str = ""  # name(): only events of this exact name
    header: str = ""  # header(): the pattern applies to this header's value, not the whole text
    method: str = "regex"  # regex, exact, startswith, endswith, contains, none

    def matches(self, event: str, text: str) -> bool:
        if self.name and event != self.name:
            return False
        if self.header:
            wanted = self.header.lower()
            lines = (line.partition(":") for line in text.split("\r\n"))
            found = [value.strip() for key, sep, value in lines if sep and key.strip().lower() == wanted]
            if not found:
                return False
        else:
            found = [text]
        return any(self._matches_value(value) for value in found)

    def _matches_value(self, value: str) -> bool:
        if self.method == "none":
            return True
        if self.method == "exact":
            return value == self.pattern
        if self.method == "startswith":
            return value.startswith(self.pattern)
        if self.method == "endswith":
            return value.endswith(self.pattern)
        if self.method == "contains":
            return self.pattern in value
        return _compiled(self.pattern).search(value) is not None


_FILTER_CRITERION = re.compile(r"(action|name|header|method)\(([^()]*)\)")


def parse_event_filter(key: str, value: str) -> EventFilter:
    """An eventfilter line's key (`eventfilter` or `eventfilter(criteria)`) and value; ValueError
    on criteria or a regular expression Asterisk would refuse too."""
    criteria = key.strip()[len("eventfilter") :].strip()
    if not criteria:
        include = not value.startswith("!")
        pattern = value if include else value[1:]
        _compiled(pattern)
        return EventFilter(include, pattern)
    if not (criteria.startswith("(") and criteria.endswith(")")):
        raise ValueError(f"eventfilter{criteria}: criteria go in parentheses")
    options = dict(_FILTER_CRITERION.findall(criteria[1:-1]))
    action = options.get("action", "include").strip().lower()
    if action not in ("include", "exclude"):
        raise ValueError(f"eventfilter{criteria}: action({action}) is not include or exclude")
    # An empty right-hand side selects on name()/header() alone.
    method = options.get("method", "regex" if value else "none").strip().lower().replace("_", "")
    if method not in ("regex", "exact", "startswith", "endswith", "contains", "none"):
        raise ValueError(f"eventfilter{criteria}: unknown method({method})")
    if method == "regex":
        _compiled(value)
    return EventFilter(
        action == "include", value, options.get("name", "").strip(), options.get("header", "").strip(), method
    )


_regex_cache: dict[str, re.Pattern] = {}


def _compiled(pattern: str) -> re.Pattern:
    compiled = _regex_cache.get(pattern)
    if compiled is None:
        try:
            compiled = _regex_cache[pattern] = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"eventfilter {pattern!r}: {exc}") from exc
    return compiled


def event_passes(filters: tuple[EventFilter, ...], event: str, text: str) -> bool:
    """Asterisk's order: with include filters, an event must match one of them; then it must match
    no exclude filter. No filters: every event passes."""
    includes = [f for f in filters if f.include]
    if includes and not any(f.matches(event, text) for f in includes):
        return False
    return not any(f.matches(event, text) for f in filters if not f.include)


@dataclass
class ManagerUser:
    name: str
    secret: str = ""
    read: frozenset[str] = frozenset()
    write: frozenset[str] = frozenset()
    event_filters: tuple[EventFilter, ...] = ()


def _classes(text: str) -> frozenset[str]:
    items = {c.strip().lower() for c in text.split(",") if c.strip()}
    return ALL_CLASSES if "all" in items else frozenset(items & ALL_CLASSES)


def load_manager_general(path: str | Path) -> dict[str, str]:
    """The [general] options of a manager.conf-style file (e.g. timestampevents)."""
    options: dict[str, str] = {}
    section = ""
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            section = line[1 : line.find("]")].strip().lower() if "]" in line else ""
        elif section == "general" and "=" in line:
            key, _, value = line.partition("=")
            options[key.strip().lower()] = value.strip()
    return options


def load_manager_users(path: str | Path) -> dict[str, ManagerUser]:
    """Users of a manager.conf-style file: one section per user with secret/read/write and its
    eventfilter lines (a filter Asterisk would refuse is skipped with a warning, as Asterisk does)."""
    users: dict[str, ManagerUser] = {}
    current: dict[str, str] | None = None
    filters: list[EventFilter] = []
    name = ""

    def flush() -> None:
        if current is not None and name != "general":
            users[name] = ManagerUser(
                name,
                current.get("secret", ""),
                _classes(current.get("read", "")),
                _classes(current.get("write", "")),
                tuple(filters),
            )

    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            flush()
            name = line[1 : line.find("]")].strip() if "]" in line else line[1:].strip()
            current, filters = {}, []
            continue
        key, sep, value = line.partition("=")
        if sep and current is not None and key.strip().lower().startswith("eventfilter"):
            try:
                filters.append(parse_event_filter(key, value.lstrip(">").strip()))
            except ValueError as exc:
                log.warning("manager.conf [%s]: %s; filter ignored", name, exc)
        elif sep and current is not None:
            current.setdefault(key.strip().lower(), value.lstrip(">").strip())
    flush()
    return users


def _event_tv() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}+0000"


_privilege_cache: dict[str, frozenset[str]] = {}


def privilege_classes(privilege: str) -> frozenset[str]:
    classes = _privilege_cache.get(privilege)
    if classes is None:
        classes = frozenset(c.strip().lower() for c in privilege.split(",")) - {"all"}
        _privilege_cache[privilege] = classes
    return classes


class Message:
    """One action frame: headers in order, looked up case-insensitively."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = pairs
        self.first: dict[str, str] = {}
        for key, value in pairs:
            self.first.setdefault(key.lower(), value)

    def get(self, key: str, default: str = "") -> str:
        return self.first.get(key.lower(), default)

    def has(self, key: str) -> bool:
        return key.lower() in self.first

    def all(self, key: str) -> list[str]:
        key = key.lower()
        return [v for k, v in self.pairs if k.lower() == key]


def parse_frame(text: str) -> Message:
    pairs = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue  # Asterisk ignores a header line without a colon
        pairs.append((key.strip(), value[1:] if value.startswith(" ") else value))
    return Message(pairs)


class AmiSession:
    def __init__(self, server: AmiServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.pbx = server.pbx
        self.reader, self.writer = reader, writer
        self.user: ManagerUser | None = None
        self.event_classes: frozenset[str] = frozenset()
        self.closed = False
        self.session_id = f"0x{id(self):x}"
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        local = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        remote = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        self.local_address = f"IPV4/TCP/{local[0]}/{local[1]}"
        self.remote_address = f"IPV4/TCP/{remote[0]}/{remote[1]}"
        self.session_tv = _event_tv()

    # -- output ----------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        transport = self.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_PENDING_OUTPUT:
            log.warning("AMI session %s does not read its events; closing it", self.remote_address)
            self.close()
            return
        self.writer.write(data)

    def deliver(self, privilege: str, frame: bytes) -> None:
        if self.event_classes and (privilege_classes(privilege) & self.event_classes):
            self.write(frame)

    def respond(self, msg: Message, response: str, body: str = "") -> None:
        action_id = msg.get("ActionID") if msg.has("ActionID") else None
        frame = f"Response: {response}\r\n" + (f"ActionID: {action_id}\r\n" if action_id is not None else "")
        self.write((frame + body + "\r\n").encode())

    def error(self, msg: Message, message: str) -> None:
        self.respond(msg, "Error", f"Message: {message}\r\n")

    def success(self, msg: Message, message: str | None = None, extra: str = "") -> None:
        self.respond(msg, "Success", (f"Message: {message}\r\n" if message is not None else "") + extra)

    def send_event(self, event: str, body: str) -> None:
        self.write(f"Event: {event}\r\n{body}\r\n".encode())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.listening.discard(self)
            self.writer.close()

    # -- input -----------------------------------------------------------------------------------

    async def run(self) -> None:
        self.writer.write(BANNER)
        buffer = b""
        lines: list[bytes] = []
        spoiled = discarding = False
        try:
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                buffer += data
                while not self.closed:
                    newline = buffer.find(b"\n")
                    if newline < 0:
                        if len(buffer) > MAX_LINE:
                            # Like Asterisk, keep nothing of an over-long line; its frame gets an error.
                            spoiled = discarding = True
                            buffer = b""
                        break
                    line, buffer = buffer[:newline].rstrip(b"\r"), buffer[newline + 1 :]
                    if discarding:
                        discarding = False
                        continue
                    if len(line) > MAX_LINE:
                        spoiled = True
                    elif line:
                        lines.append(line)
                    elif spoiled:
                        self.write(
                            b"Response: Error\r\nMessage: Failed to parse message: line too long\r\n\r\n"
                        )
                        lines, spoiled = [], False
                    elif lines:
                        frame, lines = lines, []
                        await self.process(parse_frame(b"\n".join(frame).decode("utf-8", errors="replace")))
        except (ConnectionError, OSError) as exc:
            log.info("AMI %s: connection error: %s", self.remote_address, exc)
        finally:
            self.close()

    async def process(self, msg: Message) -> None:
        action = msg.get("Action").strip()
        if not action:
            self.error(msg, "Missing action in request")
            return
        name = action.lower()
        if self.user is None and name not in ("login", "logoff"):
            self.error(msg, "Permission denied")
            return
        handler = ACTIONS.get(name)
        if handler is None:
            self.error(
                msg,
                f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.",
            )
            self.pbx.emit(
                "RequestBadFormat",
                "security,all",
                self.security_body("Error", f"RequestType: Action: {action}\r\n", account_last=True),
            )
            return
        func, needed = handler
        if needed and self.user is not None and not (needed & self.user.write):
            self.error(msg, "Permission denied")
            return
        try:
            await func(self, msg)
        except (DialplanError, ValueError) as exc:
            log.warning("AMI action %s failed: %s", action, exc)
            self.error(msg, str(exc))
        except (ConnectionError, OSError):
            raise
        except Exception:
            # A simulator bug must cost one action, never the session or the server.
            log.exception("AMI action %s: simulator error", action)
            self.error(msg, "Internal error")

    def security_body(self, severity: str, extra: str, account_last: bool = False) -> str:
        account = f"AccountID: {self.user.name if self.user else ''}\r\n"
        return (
            f"EventTV: {_event_tv()}\r\nSeverity: {severity}\r\nService: AMI\r\nEventVersion: 1\r\n"
            + ("" if account_last else account)
            + f"SessionID: {self.session_id}\r\nLocalAddress: {self.local_address}\r\n"
            f"RemoteAddress: {self.remote_address}\r\n"
            + extra
            + f"SessionTV: {self.session_tv}\r\n"
            + (account if account_last else "")
        )

    # -- session actions -------------------------------------------------------------------------

    async def action_login(self, msg: Message) -> None:
        user = self.server.users.get(msg.get("Username"))
        if user is None or msg.get("Secret") != user.secret or not user.secret:
            log.info("AMI %s: authentication failed for %r", self.remote_address, msg.get("Username"))
            await asyncio.sleep(FAILED_LOGIN_DELAY)
            self.error(msg, "Authentication failed")
            await self.writer.drain()
            self.close()
            return
        self.user = user
        events = msg.get("Events", "on").strip().lower()
        if events in ("on", "yes", "true", "1", ""):
            self.event_classes = user.read
        elif events in ("off", "no", "false", "0"):
            self.event_classes = frozenset()
        else:
            self.event_classes = _classes(events) & user.read
        self.server.listening.add(self)
        self.success(msg, "Authentication accepted")
        if "system" in self.event_classes:
            uptime = self.pbx.uptime()
            self.send_event(
                "FullyBooted",
                f"Privilege: system,all\r\nUptime: {uptime}\r\nLastReload: {uptime}\r\n"
                "Status: Fully Booted\r\n",
            )
        self.pbx.emit(
            "SuccessfulAuth", "security,all", self.security_body("Informational", "UsingPassword: 0\r\n")
        )
        log.info("AMI %s: %s logged in", self.remote_address, user.name)

    async def action_logoff(self, msg: Message) -> None:
        self.respond(msg, "Goodbye", "Message: Thanks for all the fish.\r\n")
        await self.writer.drain()
        self.close()

    async def action_ping(self, msg: Message) -> None:
        # The PBX's clock, as the events' Timestamp (Asterisk stamps both with ast_tvnow()).
        self.respond(msg, "Success", f"Ping: Pong\r\nTimestamp: {self.pbx.now():.6f}\r\n")

    async def action_events(self, msg: Message) -> None:
        mask = msg.get("EventMask", "on").strip().lower()
        assert self.user is not None
        if mask in ("on", "yes", "true", "1"):
            self.event_classes = self.user.read
        elif mask in ("off", "no", "false", "0"):
            self.event_classes = frozenset()
        else:
            self.event_classes = _classes(mask) & self.user.read
        self.respond(msg, "Success", f"Events: {'On' if self.event_classes else 'Off'}\r\n")

    async def action_listcommands(self, msg: Message) -> None:
        lines = "".join(
            f"{name}: {name} (Priv: {','.join(sorted(perm)) or '<none>'})\r\n"
            for name, (_, perm) in sorted(ACTIONS.items())
        )
        self.respond(msg, "Success", lines)

    # -- call actions ----------------------------------------------------------------------------

    def channel_or_error(
        self, msg: Message, header: str = "Channel", missing: str = "No channel specified"
    ) -> Channel | None:
        name = msg.get(header).strip()
        if not name:
            self.error(msg, missing)
            return None
        chan = self.pbx.find_channel(name)
        if chan is None or chan.hidden or not chan.alive:
            self.error(msg, "No such channel")
            return None
        return chan

    async def action_originate(self, msg: Message) -> None:
        channel = msg.get("Channel").strip()
        if not channel:
            self.error(msg, "Channel not specified")
            return
        timeout_text = msg.get("Timeout").strip()
        timeout_ms = 30000
        if timeout_text:
            try:
                timeout_ms = int(float(timeout_text))
            except ValueError:
                self.error(msg, "Invalid timeout")
                return
        if "/" not in channel:
            self.error(msg, "Invalid channel")
            return
        priority = msg.get("Priority", "1").strip() or "1"
        context, exten = msg.get("Context").strip(), msg.get("Exten").strip()
        if (
            not priority.isdigit()
            and not msg.get("Application")
            and self.pbx.dialplan.resolve_priority(context, exten, priority) is None
        ):
            self.error(msg, "Invalid priority")
            return
        callerid = None
        if msg.get("CallerID").strip():
            callerid = _parse_callerid(msg.get("CallerID"))
        variables = []
        for header in msg.all("Variable"):
            for item in split_args(header, remove_quotes=True):
                name, sep, value = item.partition("=")
                if sep and name.strip():
                    variables.append((name.strip(), value))
        req = OriginateRequest(
            channel=channel,
            context=context,
            exten=exten,
            priority=priority,
            application=msg.get("Application").strip(),
            data=msg.get("Data"),
            timeout_ms=timeout_ms,
            callerid=callerid,
            variables=variables,
            account=msg.get("Account"),
            channel_id=msg.get("ChannelId").strip(),
            other_channel_id=msg.get("OtherChannelId").strip(),
            action_id=msg.get("ActionID") if msg.has("ActionID") else None,
            is_async=msg.get("Async").strip().lower() in ("true", "yes", "1", "on"),
        )
        if req.channel_id and self.pbx.find_channel(req.channel_id) is not None:
            self.error(msg, "Uniqueid already in use")
            return
        log.info(
            "AMI originate %s -> %s",
            channel,
            f"{context},{exten},{priority}" if not req.application else f"{req.application}({req.data})",
        )
        if req.is_async:
            self.success(msg, "Originate successfully queued")
            self.pbx.spawn(self.pbx.originate(req, None), name=f"originate {channel}")
            return
        ok = await self.pbx.originate(req, None)
        if ok:
            self.success(msg, "Originate successfully queued")
        else:
            self.error(msg, "Originate failed")

    async def action_hangup(self, msg: Message) -> None:
        name = msg.get("Channel").strip()
        if not name:
            self.error(msg, "No channel specified")
            return
        cause_text = msg.get("Cause").strip()
        cause = int(cause_text) if cause_text.isdigit() else 16
        if len(name) > 2 and name.startswith("/") and name.endswith("/"):
            try:
                pattern = re.compile(name[1:-1])
            except re.error:
                self.error(msg, "Invalid regex")
                return
            targets = [c for c in self.pbx.channels.values() if not c.hidden and pattern.search(c.name)]
            aid = f"ActionID: {msg.get('ActionID')}\r\n" if msg.has("ActionID") else ""
            self.respond(msg, "Success", "EventList: start\r\nMessage: Channels hung up will follow\r\n")
            for chan in targets:
                _hangup_channel(chan, cause)
                self.send_event("ChannelHungup", f"Channel: {chan.name}\r\n" + aid)
            self.send_event(
                "ChannelsHungupListComplete", aid + f"EventList: Complete\r\nListItems: {len(targets)}\r\n"
            )
            return
        chan = self.channel_or_error(msg)
        if chan is None:
            return
        _hangup_channel(chan, cause)
        self.success(msg, "Channel Hungup")

    async def action_redirect(self, msg: Message) -> None:
        name = msg.get("Channel").strip()
        if not name:
            self.error(msg, "Channel not specified")
            return
        exten, context = msg.get("Exten").strip(), msg.get("Context").strip()
        chan = self.pbx.find_channel(name)
        if chan is None or chan.hidden or not chan.alive:
            self.error(msg, f"Channel does not exist: {name}")
            return
        context = context or chan.context
        exten = exten or chan.exten
        priority = self.pbx.dialplan.resolve_priority(context, exten, msg.get("Priority", "1").strip() or "1")
        if priority is None:
            self.error(msg, "Invalid priority")
            return
        targets = [chan]
        extra = msg.get("ExtraChannel").strip()
        if extra:
            other = self.pbx.find_channel(extra)
            if other is None or other.hidden:
                self.error(msg, f"ExtraChannel does not exist: {extra}")
                return
            targets.append(other)
        self.success(msg, "Redirect successful")
        for target in targets:
            self.pbx.redirect(target, context, exten, priority)

    async def action_bridge(self, msg: Message) -> None:
        names = msg.get("Channel1").strip(), msg.get("Channel2").strip()
        if not names[0] or not names[1]:
            self.error(msg, "Missing channel parameter in request")
            return
        chans = []
        for i, name in enumerate(names, 1):
            chan = self.pbx.find_channel(name)
            if chan is None or chan.hidden or not chan.alive:
                self.error(msg, f"Channel{i} does not exist: {name}")
                return
            chans.append(chan)
        if chans[0] is chans[1]:
            self.error(msg, "Unable to bridge a channel to itself")
            return
        self.success(msg, "Channels have been bridged")
        self.pbx.action_bridge(chans[0], chans[1])

    async def action_absolutetimeout(self, msg: Message) -> None:
        chan = self.channel_or_error(msg)
        if chan is None:
            return
        try:
            seconds = float(msg.get("Timeout", "0") or 0)
        except ValueError:
            self.error(msg, "Invalid timeout")
            return
        self.pbx.absolute_timeout(chan, seconds)
        self.success(msg, "Timeout Set")

    async def action_setvar(self, msg: Message) -> None:
        variable = msg.get("Variable").strip()
        if not variable:
            self.error(msg, "No variable specified")
            return
        value = msg.get("Value")
        if msg.get("Channel").strip():
            chan = self.channel_or_error(msg)
            if chan is None:
                return
            self.pbx.apps.assign(chan, variable, value)
        else:
            self.pbx.dialplan.globals[variable] = value
        self.success(msg, "Variable Set")

    async def action_getvar(self, msg: Message) -> None:
        variable = msg.get("Variable").strip()
        if not variable:
            self.error(msg, "No variable specified")
            return
        if msg.get("Channel").strip():
            chan = self.channel_or_error(msg)
            if chan is None:
                return
            if variable.endswith(")") and "(" in variable:
                value = substitute("${" + variable + "}", chan)
            else:
                value = chan.get_variable(variable) or ""
        else:
            if variable.endswith(")"):
                self.error(msg, "No channel specified")
                return
            value = self.pbx.dialplan.globals.get(variable, "")
        self.respond(msg, "Success", f"Variable: {variable}\r\nValue: {value}\r\n")

    async def action_status(self, msg: Message) -> None:
        if msg.get("Channel").strip():
            chan = self.channel_or_error(msg)
            if chan is None:
                return
            chans = [chan]
        else:
            chans = [c for c in self.pbx.channels.values() if not c.hidden]
        aid = f"ActionID: {msg.get('ActionID')}\r\n" if msg.has("ActionID") else ""
        self.respond(msg, "Success", "EventList: start\r\nMessage: Channel status will follow\r\n")
        now = self.pbx.now()
        for chan in chans:
            self.send_event(
                "Status",
                "Privilege: Call\r\n"
                + chan.snapshot()
                + (
                    f"Type: {chan.tech}\r\nDNID: \r\n"
                    f"EffectiveConnectedLineNum: {chan.conn_num or '<unknown>'}\r\n"
                    f"EffectiveConnectedLineName: {chan.conn_name or '<unknown>'}\r\nTimeToHangup: 0\r\n"
                    f"BridgeID: {chan.bridge.id if chan.bridge else ''}\r\n"
                    f"Application: {chan.current_app}\r\nData: {chan.current_data}\r\n"
                    f"Nativeformats: (slin)\r\nReadformat: slin\r\nReadtrans: \r\n"
                    f"Writeformat: slin\r\nWritetrans: \r\nCallgroup: 0\r\nPickupgroup: 0\r\n"
                    f"Seconds: {int(now - chan.created)}\r\n"
                )
                + aid,
            )
        self.send_event(
            "StatusComplete",
            aid + f"EventList: Complete\r\nListItems: {len(chans)}\r\nItems: {len(chans)}\r\n",
        )

    async def action_coreshowchannels(self, msg: Message) -> None:
        aid = f"ActionID: {msg.get('ActionID')}\r\n" if msg.has("ActionID") else ""
        self.respond(msg, "Success", "EventList: start\r\nMessage: Channels will follow\r\n")
        chans = [c for c in reversed(self.pbx.channels.values()) if not c.hidden]
        now = self.pbx.now()
        for chan in chans:
            secs = int(now - chan.created)
            self.send_event(
                "CoreShowChannel",
                aid
                + chan.snapshot()
                + (
                    f"Application: {chan.current_app}\r\nApplicationData: {chan.current_data}\r\n"
                    f"Duration: {secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}\r\n"
                    f"BridgeId: {chan.bridge.id if chan.bridge else ''}\r\n"
                ),
            )
        self.send_event(
            "CoreShowChannelsComplete", aid + f"EventList: Complete\r\nListItems: {len(chans)}\r\n"
        )

    async def action_mixmonitor(self, msg: Message) -> None:
        chan = self.channel_or_error(msg)
        if chan is None:
            return
        filename = msg.get("File").strip() or f"{chan.uniqueid}.wav"
        self.respond(msg, "Success")
        self.pbx.apps.start_mixmonitor(chan, filename)

    async def action_stopmixmonitor(self, msg: Message) -> None:
        chan = self.channel_or_error(msg)
        if chan is None:
            return
        if chan.monitor is None:
            self.error(msg, "Could not stop MixMonitor")
            return
        self.respond(msg, "Success")
        self.pbx.apps.stop_mixmonitor(chan)

    async def action_userevent(self, msg: Message) -> None:
        if not msg.get("UserEvent").strip():
            self.error(msg, "UserEvent not specified")
            return
        body = "".join(f"{k}: {v}\r\n" for k, v in msg.pairs if k.lower() != "action")
        self.success(msg, "Event Sent")
        self.pbx.emit("UserEvent", "user,all", body)

    async def action_messagesend(self, msg: Message) -> None:
        to = msg.get("To").strip() or msg.get("Destination").strip()
        if not to:
            self.error(msg, "No 'To' address specified.")
            return
        tech = to.split(":", 1)[0].lower() if ":" in to else ""
        if tech not in self.pbx.settings.message_technologies:
            self.error(msg, "Message technology not found.")
            return
        body = msg.get("Body")
        if msg.has("Base64Body"):
            try:
                body = base64.b64decode(msg.get("Base64Body")).decode("utf-8", errors="replace")
            except ValueError:
                self.error(msg, "Invalid Base64Body")
                return
        record = {
            "time": time.time(),
            "to": to,
            "from": msg.get("From"),
            "body": body,
            "variables": dict(v.partition("=")[::2] for v in msg.all("Variable")),
        }
        log.info("message to %s from %s: %s", to, record["from"], body)
        path = self.pbx.settings.messages_file
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")
            except OSError as exc:
                log.error("cannot append to messages file %s: %s", path, exc)
        self.success(msg, "Message successfully sent")


def _parse_callerid(text: str) -> tuple[str, str]:
    text = text.strip()
    m = re.match(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$', text)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    if text.replace("+", "").isdigit():
        return "", text
    return text, ""


def _hangup_channel(chan: Channel, cause: int) -> None:
    chan.hangupcause = cause
    chan.soft_hangup(SOFTHANGUP_EXPLICIT, event=False)


ActionHandler = Callable[[AmiSession, Message], Awaitable[None]]

ACTIONS: dict[str, tuple[ActionHandler, frozenset[str]]] = {
    "login": (AmiSession.action_login, frozenset()),
    "logoff": (AmiSession.action_logoff, frozenset()),
    "ping": (AmiSession.action_ping, frozenset()),
    "events": (AmiSession.action_events, frozenset()),
    "listcommands": (AmiSession.action_listcommands, frozenset()),
    "originate": (AmiSession.action_originate, frozenset({"originate"})),
    "hangup": (AmiSession.action_hangup, frozenset({"system", "call"})),
    "redirect": (AmiSession.action_redirect, frozenset({"call"})),
    "bridge": (AmiSession.action_bridge, frozenset({"call"})),
    "absolutetimeout": (AmiSession.action_absolutetimeout, frozenset({"system", "call"})),
    "setvar": (AmiSession.action_setvar, frozenset({"call"})),
    "getvar": (AmiSession.action_getvar, frozenset({"call", "reporting"})),
    "status": (AmiSession.action_status, frozenset({"system", "call", "reporting"})),
    "coreshowchannels": (AmiSession.action_coreshowchannels, frozenset({"system", "reporting"})),
    "mixmonitor": (AmiSession.action_mixmonitor, frozenset({"system"})),
    "stopmixmonitor": (AmiSession.action_stopmixmonitor, frozenset({"system", "call"})),
    "userevent": (AmiSession.action_userevent, frozenset({"user"})),
    "messagesend": (AmiSession.action_messagesend, frozenset({"message"})),
}


@dataclass
class AmiServer:
    pbx: PBX
    users: dict[str, ManagerUser]
    server: asyncio.base_events.Server | None = None
    connections: set[AmiSession] = field(default_factory=set)
    # logged-in sessions: they get the PBX's events
    listening: set[AmiSession] = field(default_factory=set)
    session_tasks: set[asyncio.Task] = field(default_factory=set)

    def deliver(self, event: str, privilege: str, body: str) -> None:
        if not self.listening:
            return
        stamp = f"Timestamp: {self.pbx.now():.6f}\r\n" if self.pbx.settings.timestamp_events else ""
        frame = f"Event: {event}\r\nPrivilege: {privilege}\r\n{stamp}{body}\r\n".encode()
        text = ""
        for session in tuple(self.listening):
            filters = session.user.event_filters if session.user is not None else ()
            if filters:
                text = text or frame.decode()
                if not event_passes(filters, event, text):
                    continue
            session.deliver(privilege, frame)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self.pbx.subscribe(self.deliver)
        self.server = await asyncio.start_server(self._accept, host, port, limit=MAX_FRAME, backlog=1024)
        sockname = self.server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AmiSession(self, reader, writer)
        self.connections.add(session)
        task = asyncio.current_task()
        self.session_tasks.add(task)
        try:
            await session.run()
        finally:
            self.connections.discard(session)
            self.session_tasks.discard(task)

    async def stop(self) -> None:
        self.pbx.unsubscribe(self.deliver)
        if self.server is not None:
            self.server.close()
        for session in list(self.connections):
            session.close()
        # Let each session's task see its connection close and end: a task still running when the
        # loop ends would be cancelled mid-read and logged as an error.
        if self.session_tasks:
            await asyncio.wait(set(self.session_tasks), timeout=2)
        if self.server is not None:
            await self.server.wait_closed()
