"""Dialplan applications. Each takes the channel and its (substituted) data and returns 0 to go
on to the next priority or -1 to end the call, as Asterisk's applications do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import wave
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .channels import (
    CAUSE_NAMES,
    CONTROL_ANSWER,
    CONTROL_BUSY,
    CONTROL_CONGESTION,
    CONTROL_HANGUP,
    CONTROL_INTERRUPT,
    CONTROL_PROGRESS,
    CONTROL_RINGING,
    STATE_BUSY,
    STATE_UP,
    Bridge,
    CdrRecord,
    Channel,
    Interrupted,
    SubroutineDone,
    Switch,
)
from .dialplan import DialplanError, split_args, substitute, truthy
from .functions import write_function

log = logging.getLogger("pbxsim.apps")

# Sound lengths (seconds) of the stock Asterisk prompts the reference traces play, used when
# --sounds has no file of that name.
STOCK_SOUND_SECONDS = {
    "hello-world": 1.404,
    "beep": 0.4255,
    "vm-goodbye": 0.862,
    "conf-getpin": 1.6,
    # the queue's prompts, as long as they played in tests/pbxsim/apps (q-announce, q-exit-key, ...)
    "queue-thereare": 2.29,
    "queue-callswaiting": 2.47,
    "queue-thankyou": 1.59,
    "vm-nobodyavail": 2.79,
}
DIGIT_SOUND_SECONDS = 0.82
DEFAULT_SOUND_SECONDS = 1.0
# ChanSpy attaches this long after its answer; it looks whether the spied channel is gone this often.
SPY_ATTACH_SECONDS = 0.1
SPY_POLL_SECONDS = 0.25
# Answer waits this long for the first audio from the far end, as Asterisk does to avoid clipping.
ANSWER_MEDIA_WAIT = 0.5

DIAL_VARIABLES = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)
DIAL_DISPOSITION = {
    "BUSY": "BUSY",
    "NOANSWER": "NO ANSWER",
    "CONGESTION": "CONGESTION",
    "CHANUNAVAIL": "FAILED",
    "CANCEL": "NO ANSWER",
    "ANSWER": "ANSWERED",
}


class Exchange(Switch, Protocol):
    """What the applications (and the FastAGI client they start) need of the exchange (core.PBX)."""

    settings: Any
    apps: Applications
    agi_database: dict[tuple[str, str], str]

    async def sleep(self, sim_seconds: float) -> None: ...

    def spawn(self, coro: Coroutine, name: str | None = None) -> asyncio.Task: ...

    def find_channel(self, name: str) -> Channel | None: ...

    def request(
        self, dialstring: str, linkedid: str | None, uid1: str = "", uid2: str = ""
    ) -> tuple[Channel, Channel] | None: ...

    def fail_pair(self, one: Channel, two: Channel) -> None: ...

    def emit_local_bridge(self, one: Channel, two: Channel) -> None: ...

    async def run_pbx(self, chan: Channel) -> None: ...


Application = Callable[[Channel, str], Awaitable[int]]


def parse_cause(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        return int(text)
    return CAUSE_NAMES.get(text.upper(), 16)


def parse_options(text: str) -> dict[str, str]:
    """Dial-style options: letters, some with a parenthesised argument: `gL(5000:2000)U(sub^a)`."""
    out: dict[str, str] = {}
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if i < len(text) and text[i] == "(":
            depth, j = 1, i + 1
            while j < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
            out[c] = text[i + 1 : j - 1]
            i = j
        else:
            out[c] = ""
    return out


class _TaggedQueue:
    """Lets several dialled channels report into one queue, each control tagged with its channel."""

    def __init__(self, queue: asyncio.Queue, chan: Channel):
        self.queue, self.chan = queue, chan

    def put_nowait(self, control: int) -> None:
        self.queue.put_nowait((self.chan, control))


class MixMonitorRecording:
    """A recording of a channel: silence as long as the call, written when it stops."""

    def __init__(self, chan: Channel, path: Path):
        self.chan, self.path = chan, path
        self.started = chan.pbx.now()
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.chan.monitor = None
        seconds = max(self.chan.pbx.now() - self.started, 0.0)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(self.path), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(8000)
                frames = int(seconds * 8000)
                chunk = b"\0\0" * 8000
                while frames > 0:
                    n = min(frames, 8000)
                    out.writeframes(chunk[: n * 2])
                    frames -= n
            log.info("%s: recording %s written (%.1f s)", self.chan.name, self.path, seconds)
        except OSError as exc:
            log.error("%s: cannot write recording %s: %s", self.chan.name, self.path, exc)


class Applications:
    def __init__(self, pbx: Exchange):
        self.pbx = pbx
        self._sound_cache: dict[str, float] = {}
        self.table: dict[str, Application] = {
            "answer": self.answer,
            "ringing": self.ringing,
            "progress": self.progress,
            "wait": self.wait,
            "playback": self.playback,
            "background": self.background,
            "read": self.read,
            "senddtmf": self.send_dtmf,
            "dial": self.dial,
            "set": self.set,
            "mset": self.mset,
            "noop": self.noop,
            "verbose": self.verbose,
            "log": self.log_app,
            "goto": self.goto,
            "gotoif": self.gotoif,
            "gosub": self.gosub,
            "gosubif": self.gosubif,
            "return": self.return_,
            "userevent": self.user_event,
            "mixmonitor": self.mixmonitor,
            "stopmixmonitor": self.stop_mixmonitor_app,
            "musiconhold": self.music_on_hold,
            "startmusiconhold": self.start_moh,
            "stopmusiconhold": self.stop_moh,
            "busy": self.busy,
            "congestion": self.congestion,
            "hangup": self.hangup,
            "waitexten": self.wait_exten,
            "echo": self.echo,
            "saydigits": self.say_digits,
            "saynumber": self.say_number,
            "execif": self.exec_if,
            "bridge": self.bridge_app,
            "chanspy": self.chan_spy,
        }

    def add(self, name: str, handler: Application) -> None:
        """An application that lives in a layer above this one (AGI, which drives the others)."""
        self.table[name.lower()] = handler

    # -- dispatch --------------------------------------------------------------------------------

    def newexten(self, chan: Channel, app: str, data: str) -> None:
        chan.current_app, chan.current_data = app, data
        chan.emit(
            "Newexten",
            "dialplan,all",
            f"Extension: {chan.exten}\r\nApplication: {app}\r\nAppData: {data}\r\n",
        )
        if not chan.in_hangup_handler:
            chan.cdr.on_app(app, data)

    async def run(
        self, chan: Channel, app: str, raw_data: str, source: str | None = None, newexten: bool = True
    ) -> int:
        if app.lower() not in self.table:
            where = f" (at {source})" if source else ""
            raise DialplanError(f"application {app}(){where} is not implemented by the simulator")
        data = substitute(raw_data, chan)
        if newexten:
            self.newexten(chan, app, data)
        log.info("%s: %s,%s,%s %s(%s)", chan.name, chan.context, chan.exten, chan.priority, app, data)
        return await self.execute(chan, app, data)

    async def execute(self, chan: Channel, app: str, data: str) -> int:
        handler = self.table.get(app.lower())
        if handler is None:
            raise DialplanError(f"application {app}() is not implemented by the simulator")
        try:
            return await handler(chan, data)
        except Interrupted:
            return -1

    async def run_subroutine(self, chan: Channel, location: str, args: list[str]) -> None:
        """Run a Gosub routine to its Return on a channel that runs no dialplan of its own."""
        self._push_gosub(chan, location, args, marker=True)
        try:
            while chan.alive or chan.in_hangup_handler:
                ext = self.pbx.dialplan.find_extension(chan.context, chan.exten)
                prio = ext.priorities.get(chan.priority) if ext else None
                if prio is None:
                    break
                res = await self.run(chan, prio.app, prio.data, source=prio.source)
                if res != 0:
                    break
                chan.priority += 1
        except SubroutineDone:
            return

    # -- sounds ----------------------------------------------------------------------------------

    def sound_seconds(self, name: str) -> float:
        if name in self._sound_cache:
            return self._sound_cache[name]
        seconds = None
        base = self.pbx.settings.sounds_dir
        if base is not None:
            for candidate in (base / f"{name}.wav", base / "en" / f"{name}.wav"):
                if candidate.is_file():
                    try:
                        with wave.open(str(candidate), "rb") as w:
                            seconds = w.getnframes() / float(w.getframerate())
                    except (wave.Error, OSError, EOFError) as exc:
                        log.warning("cannot read %s: %s", candidate, exc)
                    break
        if seconds is None:
            stem = name.rsplit("/", 1)[-1]
            if name.startswith("digits/"):
                seconds = DIGIT_SOUND_SECONDS
            else:
                seconds = STOCK_SOUND_SECONDS.get(stem, DEFAULT_SOUND_SECONDS)
        self._sound_cache[name] = seconds
        return seconds

    async def stream(self, chan: Channel, name: str, escape: str = "") -> tuple[str | None, int]:
        """Play one file; returns (the escape digit pressed or None, samples played). Raises on hang-up."""
        seconds = self.sound_seconds(name)
        chan.playing += 1
        chan.media_started()
        start = time.monotonic()
        try:
            deadline = start + self.pbx.real(seconds)
            while True:
                remaining = (deadline - time.monotonic()) * self.pbx.time_scale
                if remaining <= 0:
                    return None, int(seconds * 8000)
                reason = await chan.pause(remaining, on=frozenset({"dtmf"}) if escape else frozenset())
                if reason == "interrupt":
                    played = (time.monotonic() - start) * self.pbx.time_scale
                    raise Interrupted(int(played * 8000))
                if reason == "dtmf":
                    while chan.digits:
                        digit = chan.digits.popleft()
                        if digit in escape:
                            played = (time.monotonic() - start) * self.pbx.time_scale
                            return digit, int(played * 8000)
                elif reason == "timeout":
                    return None, int(seconds * 8000)
        finally:
            chan.playing -= 1

    async def answer_channel(self, chan: Channel, wait_media: bool = True) -> None:
        if chan.state == STATE_UP:
            return
        chan.media_seen = False
        chan.set_state(STATE_UP)
        chan.indicate(CONTROL_ANSWER)
        peer = chan.local_peer
        # Any frame ends the wait: audio, or a key pressed while the channel rang (still queued).
        if wait_media and peer is not None and not peer.playing and not chan.media_seen and not chan.digits:
            await chan.pause(ANSWER_MEDIA_WAIT, on=frozenset({"media", "dtmf"}))

    # -- applications ----------------------------------------------------------------------------

    async def answer(self, chan: Channel, data: str) -> int:
        await self.answer_channel(chan)
        delay = data.split(",")[0].strip()
        if delay.isdigit() and int(delay) and not await chan.sleep(int(delay) / 1000):
            return -1
        return -1 if chan.interrupted else 0

    async def ringing(self, chan: Channel, data: str) -> int:
        chan.indicate(CONTROL_RINGING)
        return 0

    async def progress(self, chan: Channel, data: str) -> int:
        chan.indicate(CONTROL_PROGRESS)
        return 0

    async def wait(self, chan: Channel, data: str) -> int:
        seconds = _float(data.split(",")[0], 0.0)
        return 0 if await chan.sleep(seconds) else -1

    async def playback(self, chan: Channel, data: str) -> int:
        args = split_args(data)
        options = args[1] if len(args) > 1 else ""
        if chan.state != STATE_UP and "noanswer" not in options:
            await self.answer_channel(chan)
        try:
            for name in filter(None, args[0].split("&")):
                await self.stream(chan, name.strip())
        except Interrupted:
            # As app_playback on Asterisk 22 (q-announce): PLAYBACKSTATUS says FAILED only for a
            # file that could not be played; a hang-up mid-file ends the application with -1, so
            # the Hangup and the hangup handlers run at the Playback's own priority.
            chan.set_variable("PLAYBACKSTATUS", "SUCCESS")
            return -1 if chan.hangup_requested else 0
        chan.set_variable("PLAYBACKSTATUS", "SUCCESS")
        return 0

    async def background(self, chan: Channel, data: str) -> int:
        args = split_args(data)
        if chan.state != STATE_UP:
            await self.answer_channel(chan)
        for name in filter(None, args[0].split("&")):
            digit, _ = await self.stream(chan, name.strip(), escape="0123456789*#")
            if digit is not None:
                return self._jump_to_exten(chan, digit)
        return 0

    def _jump_to_exten(self, chan: Channel, exten: str) -> int:
        if self.pbx.dialplan.exists(chan.context, exten):
            chan.exten, chan.priority = exten, 0
            return 0
        if self.pbx.dialplan.exists(chan.context, "i"):
            chan.exten, chan.priority = "i", 0
            return 0
        return -1

    async def collect_digits(
        self, chan: Channel, prompts: list[str], max_digits: int, timeout: float | None
    ) -> tuple[str, bool]:
        """Play the prompts (any digit interrupts) then gather digits; returns (digits, timed_out)."""
        digits = ""
        for prompt in prompts:
            digit, _ = await self.stream(chan, prompt, escape="0123456789*#ABCD")
            if digit is not None:
                if digit == "#":
                    return digits, False
                digits += digit
                break
        while not max_digits or len(digits) < max_digits:
            digit = await chan.wait_digit(timeout)
            if digit is None:
                return digits, True
            if digit == "#":
                return digits, False
            digits += digit
        return digits, False

    async def read(self, chan: Channel, data: str) -> int:
        args = split_args(data) + [""] * 6
        var, files, max_digits, options, _attempts, timeout = args[:6]
        if chan.state != STATE_UP and "s" not in options:
            await self.answer_channel(chan)
        try:
            digits, timed_out = await self.collect_digits(
                chan, [f for f in files.split("&") if f], int(max_digits or 0), _float(timeout, 10.0) or 10.0
            )
        except Interrupted:
            chan.set_variable(var, "")
            chan.set_variable("READSTATUS", "HANGUP")
            return -1
        chan.set_variable(var, digits)
        chan.set_variable("READSTATUS", "TIMEOUT" if timed_out and not digits else "OK")
        return 0

    async def send_dtmf(self, chan: Channel, data: str) -> int:
        args = split_args(data) + ["", ""]
        digits, between, duration = (
            args[0],
            int(_float(args[1], 250) or 250),
            int(_float(args[2], 100) or 100),
        )
        if not await chan.sleep(0.1):
            return -1
        for digit in digits:
            if digit in "wW":
                ok = await chan.sleep(0.5)
            else:
                await chan.send_dtmf(digit.upper(), duration)
                ok = not chan.interrupted and await chan.sleep(between / 1000)
            if not ok:
                return -1
        return 0

    async def set(self, chan: Channel, data: str) -> int:
        name, sep, value = data.partition("=")
        if not sep:
            raise DialplanError(f"Set({data}): no '='")
        self.assign(chan, name.strip(), value)
        return 0

    def assign(self, chan: Channel, name: str, value: str) -> None:
        if name.endswith(")") and "(" in name:
            func, _, args = name.partition("(")
            write_function(chan, func, args[:-1], value)
        else:
            chan.set_variable(name, value)

    async def mset(self, chan: Channel, data: str) -> int:
        for pair in split_args(data):
            name, _, value = pair.partition("=")
            self.assign(chan, name.strip(), value)
        return 0

    async def noop(self, chan: Channel, data: str) -> int:
        return 0

    async def verbose(self, chan: Channel, data: str) -> int:
        level, sep, message = data.partition(",")
        log.info("%s: %s", chan.name, message if sep and level.strip().isdigit() else data)
        return 0

    async def log_app(self, chan: Channel, data: str) -> int:
        level, _, message = data.partition(",")
        log.log(
            logging.ERROR if level.strip().upper() == "ERROR" else logging.INFO, "%s: %s", chan.name, message
        )
        return 0

    def parse_location(self, chan: Channel, spec: str) -> tuple[str, str, int]:
        parts = [p.strip() for p in split_args(spec)]
        if len(parts) == 1:
            ctx, exten, prio = chan.context, chan.exten, parts[0]
        elif len(parts) == 2:
            ctx, exten, prio = chan.context, parts[0], parts[1]
        else:
            ctx, exten, prio = parts[0], parts[1], parts[2]
        number = self.pbx.dialplan.resolve_priority(ctx, exten, prio)
        if number is None or not self.pbx.dialplan.exists(ctx, exten, number):
            raise DialplanError(f"Goto({spec}): no such place in the dialplan")
        return ctx, exten, number

    async def goto(self, chan: Channel, data: str) -> int:
        ctx, exten, prio = self.parse_location(chan, data)
        chan.context, chan.exten, chan.priority = ctx, exten, prio - 1
        return 0

    async def gotoif(self, chan: Channel, data: str) -> int:
        cond, _, targets = data.partition("?")
        yes, _, no = targets.partition(":")
        target = yes if truthy(cond) else no
        if target.strip():
            return await self.goto(chan, target)
        return 0

    def _push_gosub(self, chan: Channel, spec: str, args: list[str], marker: bool = False) -> None:
        ctx, exten, prio = self.parse_location(chan, spec)
        saved = {
            name: chan.variables.get(name) for name in ["ARGC"] + [f"ARG{i}" for i in range(1, len(args) + 1)]
        }
        chan.gosub_stack.append((chan.context, chan.exten, chan.priority, saved, marker))
        chan.context, chan.exten, chan.priority = ctx, exten, prio - (0 if marker else 1)
        chan.set_variable("ARGC", str(len(args)), shown="LOCAL(ARGC)")
        for i, value in enumerate(args, 1):
            chan.set_variable(f"ARG{i}", value, shown=f"LOCAL(ARG{i})")

    async def gosub(self, chan: Channel, data: str) -> int:
        m = re.match(r"^(.*?)\((.*)\)$", data.strip())
        spec, args = (m.group(1), split_args(m.group(2))) if m else (data, [])
        self._push_gosub(chan, spec, args)
        return 0

    async def gosubif(self, chan: Channel, data: str) -> int:
        cond, _, targets = data.partition("?")
        yes, _, no = targets.partition(":")
        target = yes if truthy(cond) else no
        return await self.gosub(chan, target) if target.strip() else 0

    async def return_(self, chan: Channel, data: str) -> int:
        if not chan.gosub_stack:
            raise DialplanError("Return() without Gosub")
        ctx, exten, prio, saved, marker = chan.gosub_stack.pop()
        for name, old in saved.items():
            if old is None:
                chan.variables.pop(name, None)
            else:
                chan.variables[name] = old
            chan.emit("VarSet", "dialplan,all", f"Variable: {name}\r\nValue: {old or ''}\r\n")
        chan.set_variable("GOSUB_RETVAL", data)
        chan.context, chan.exten, chan.priority = ctx, exten, prio
        if marker:
            raise SubroutineDone
        return 0

    async def user_event(self, chan: Channel, data: str) -> int:
        args = split_args(data)
        body = f"UserEvent: {args[0]}\r\n" + "".join(f"{a.strip()}\r\n" for a in args[1:] if a.strip())
        chan.emit("UserEvent", "user,all", body)
        return 0

    def start_mixmonitor(self, chan: Channel, filename: str) -> None:
        path = Path(filename)
        if not path.is_absolute():
            path = self.pbx.settings.monitor_dir.resolve() / path
        if chan.monitor is not None:
            chan.monitor.close()
        chan.monitor = MixMonitorRecording(chan, path)
        chan.set_variable("MIXMONITOR_FILENAME", str(path))
        chan.emit("MixMonitorStart", "call,all")

    def stop_mixmonitor(self, chan: Channel) -> bool:
        if chan.monitor is None:
            return False
        chan.monitor.close()
        chan.emit("MixMonitorStop", "call,all")
        return True

    async def mixmonitor(self, chan: Channel, data: str) -> int:
        args = split_args(data)
        if not args[0]:
            raise DialplanError("MixMonitor requires a file name")
        self.start_mixmonitor(chan, args[0])
        return 0

    async def stop_mixmonitor_app(self, chan: Channel, data: str) -> int:
        self.stop_mixmonitor(chan)
        return 0

    async def music_on_hold(self, chan: Channel, data: str) -> int:
        args = split_args(data) + [""]
        duration = _float(args[1], 0.0)
        if chan.state != STATE_UP:
            await self.answer_channel(chan)
        chan.start_moh(args[0].strip())
        try:
            return 0 if await chan.sleep(duration or None) else -1
        finally:
            chan.stop_moh()

    async def start_moh(self, chan: Channel, data: str) -> int:
        chan.start_moh(split_args(data)[0].strip())
        return 0

    async def stop_moh(self, chan: Channel, data: str) -> int:
        chan.stop_moh()
        return 0

    async def _refuse(self, chan: Channel, data: str, cause: int, control: int) -> int:
        chan.hangupcause = cause
        if chan.state != STATE_UP:
            chan.set_state(STATE_BUSY)
        chan.indicate(control)
        seconds = _float(data.split(",")[0], 0.0)
        await chan.sleep(seconds or None)
        return -1

    async def busy(self, chan: Channel, data: str) -> int:
        return await self._refuse(chan, data, 17, CONTROL_BUSY)

    async def congestion(self, chan: Channel, data: str) -> int:
        return await self._refuse(chan, data, 34, CONTROL_CONGESTION)

    async def hangup(self, chan: Channel, data: str) -> int:
        if data.strip():
            chan.hangupcause = parse_cause(data)
        elif not chan.hangupcause:
            chan.hangupcause = 16
        return -1

    async def wait_exten(self, chan: Channel, data: str) -> int:
        seconds = _float(data.split(",")[0], 10.0) or 10.0
        digit = await chan.wait_digit(seconds)
        if digit is not None:
            return self._jump_to_exten(chan, digit)
        if self.pbx.dialplan.exists(chan.context, "t"):
            chan.exten, chan.priority = "t", 0
            return 0
        return -1

    async def echo(self, chan: Channel, data: str) -> int:
        await chan.sleep(None)
        return -1

    async def say_digits(self, chan: Channel, data: str) -> int:
        for ch in split_args(data)[0]:
            if ch.isdigit():
                await self.stream(chan, f"digits/{ch}")
        return 0

    async def say_number(self, chan: Channel, data: str) -> int:
        return await self.say_digits(chan, split_args(data)[0])

    async def exec_if(self, chan: Channel, data: str) -> int:
        cond, _, apps = data.partition("?")
        yes, _, no = apps.partition(":")
        chosen = yes if truthy(cond) else no
        if not chosen.strip():
            return 0
        name, _, rest = chosen.partition("(")
        return await self.execute(chan, name.strip(), rest[:-1] if rest.endswith(")") else rest)

    async def play_quietly(self, chan: Channel, name: str | None) -> None:
        if not name:
            return
        chan.playing += 1
        chan.media_started()
        try:
            await self.pbx.sleep(self.sound_seconds(name))
        finally:
            chan.playing -= 1

    async def chan_spy(self, chan: Channel, data: str) -> int:
        """ChanSpy(channel or uniqueid,options), as the call cards' whisper uses it
        (bridge-warning-playback): answer, attach 0.1 s later (ChanSpyStart), spy until this channel
        or, with E, the spied one hangs up (ChanSpyStop). No audio is simulated: what the whisper
        says is heard by nobody the simulator could tell."""
        args = split_args(data) + [""]
        options = parse_options(args[1])
        if chan.state != STATE_UP:
            await self.answer_channel(chan)
        target = self.pbx.find_channel(args[0].strip())
        if target is None or not await chan.sleep(SPY_ATTACH_SECONDS):
            return -1 if chan.hangup_requested else 0
        self.pbx.emit("ChanSpyStart", "call,all", chan.snapshot("Spyer") + target.snapshot("Spyee"))
        while target.alive or "E" not in options:
            if await chan.pause(SPY_POLL_SECONDS) == "interrupt":
                break
        self.pbx.emit("ChanSpyStop", "call,all", chan.snapshot("Spyer") + target.snapshot("Spyee"))
        return -1 if chan.hangup_requested else 0

    async def bridge_app(self, chan: Channel, data: str) -> int:
        """Bridge(channel or uniqueid,options): this channel joins the target, as Asterisk 22 does in
        bridge-app-time-limit. The target leaves what it ran (its music stops before its
        BridgeEnter) and goes on at its next priority when the bridge ends; its time before the
        bridge is in no Cdr of its own, the pair's is this channel's. BRIDGERESULT says SUCCESS,
        or FAILURE without the target.

        L(limit:warning) as main/features.c ast_bridge_timelimit reads it, from THIS channel's
        variables: for Bridge() the "caller" is this channel and the "callee" the target.
        LIMIT_PLAYAUDIO_CALLER (default yes) and LIMIT_PLAYAUDIO_CALLEE (default no; both no means
        caller) choose who hears LIMIT_CONNECT_FILE, LIMIT_WARNING_FILE (default `timeleft`: the time
        left is said) and LIMIT_TIMEOUT_FILE. At the limit (each side's own duration hook, in
        bridge_builtin_interval_features) a party that hears no timeout file leaves at once; one
        that hears it leaves once it has played. With no warning and no connect or timeout file,
        Asterisk turns L() into an S()-like limit that bridge_exec never applies: no limit at all."""
        args = split_args(data) + [""]
        target = self.pbx.find_channel(args[0].strip())
        if target is None or target is chan or not target.alive:
            chan.set_variable("BRIDGERESULT", "FAILURE")
            return 0
        options = parse_options(args[1])
        bridge = Bridge(self.pbx)
        if target.bridge is not None:
            target.bridge.leave(target)
        target.stop_moh()
        target.current_app = target.current_data = ""
        target.priority += 1
        bridge.enter(target)
        bridge.enter(chan)
        bridge.set_peers()
        target.pending_bridge = bridge
        target.wake("interrupt")
        if target.pbx_task is None or target.pbx_task.done():
            target.pbx_task = self.pbx.spawn(self.pbx.run_pbx(target), name=f"pbx {target.name}")
        target.cdr.enabled = False
        target.cdr.restart()
        chan.cdr.current.dstchannel = target.name
        limit = _TimeLimit.of(chan, options.get("L")) if "L" in options else None
        hearers: list[Channel] = []
        if limit is not None:
            hearers = [c for c, hears in ((chan, limit.to_caller), (target, limit.to_callee)) if hears]
        if limit is not None and limit.connect_file:
            for party in hearers:
                self.limit_sound(party, limit.connect_file, "connect")
        started = time.monotonic()
        warned = timed_out = False
        while chan.bridge is bridge and target.bridge is bridge and not chan.interrupted:
            elapsed = (time.monotonic() - started) * self.pbx.time_scale
            wait_for = None
            if limit is not None:
                if elapsed >= limit.seconds:
                    timed_out = True
                    break
                wait_for = limit.seconds - elapsed
                if limit.warning and not warned:
                    if elapsed >= limit.seconds - limit.warning:
                        warned = True
                        for party in hearers:
                            self.limit_sound(party, limit.warning_file, "warning")
                    else:
                        wait_for = limit.seconds - limit.warning - elapsed
            await bridge.wait_change(wait_for)
        bridge.clear_peers()
        end_file = limit.timeout_file if timed_out and limit is not None else None
        for party in hearers if end_file else ():
            log.info("Bridge L(): %s hears the timeout file %s", party.name, end_file)
        if end_file and target in hearers and target.bridge is bridge:
            # It stays for its timeout file (core.stay_in_action_bridge plays it), then leaves.
            target.limit_end_sound = end_file
            bridge.ending = True
            bridge.changed()
        elif target.bridge is bridge:
            bridge.leave(target)  # it hears no timeout file: it leaves first and goes on
        if end_file and chan in hearers:
            with contextlib.suppress(Interrupted):
                await self.stream(chan, end_file)
        bridge.leave(chan)
        if not bridge.members:
            bridge.destroy()
        if chan.hangup_requested:
            return -1
        chan.cdr.close_dial(None)
        chan.set_variable("BRIDGERESULT", "SUCCESS")
        return 0

    def limit_sound(self, party: Channel, name: str, what: str) -> None:
        # No AMI event marks it (bridge-app-time-limit): the log says who heard it.
        log.info("Bridge L(): %s hears the %s file %s", party.name, what, name)
        self.pbx.spawn(self.play_quietly(party, name))

    # -- Dial ------------------------------------------------------------------------------------

    async def dial(self, chan: Channel, data: str) -> int:
        return await Dial(self, chan, data).run()


class Dial:
    """One run of Dial(): request the callees, ring them, bridge the first to answer."""

    def __init__(self, apps: Applications, chan: Channel, data: str):
        self.apps, self.pbx, self.chan = apps, apps.pbx, chan
        args = split_args(data) + ["", ""]
        self.targets = [t.strip() for t in args[0].split("&") if t.strip()]
        self.timeout = _float(args[1], 0.0) or None
        self.options = parse_options(args[2])
        self.data = data
        self.queue: asyncio.Queue = asyncio.Queue()
        self.callees: list[tuple[Channel, Channel, str]] = []
        self.records: dict[Channel, CdrRecord] = {}
        self.started = time.monotonic()

    def set_status(self, status: str) -> None:
        self.chan.set_variable("DIALSTATUS", status)

    def dial_end(self, callee: Channel, status: str) -> None:
        self.pbx.emit(
            "DialEnd",
            "call,all",
            self.chan.snapshot() + callee.snapshot("Dest") + f"DialStatus: {status}\r\n",
        )

    async def run(self) -> int:
        chan = self.chan
        for name in DIAL_VARIABLES:
            chan.set_variable(name, "")
        for target in self.targets:
            self.request(target)
        if not self.callees:
            log.info("%s: Dial(%s): no channel could be created", chan.name, self.data)
            self.set_status("CHANUNAVAIL")
            chan.cdr.close_dial("FAILED")
            return 0
        callees = [callee for callee, _, _ in self.callees]
        self.records = dict(zip(callees, chan.cdr.fork_dial([c.name for c in callees]), strict=True))
        if "m" in self.options:
            chan.start_moh(self.options["m"])
        chan.media_started()
        try:
            winner, status = await self.ring()
        finally:
            if "m" in self.options:
                chan.stop_moh()
            chan.dial_queue = None
        if winner is None:
            self.set_status(status)
            if chan.hangup_requested:
                return -1
            return 0
        return await self.bridge(winner)

    def request(self, target: str) -> None:
        chan = self.chan
        pair = self.pbx.request(target, chan.linkedid)
        if pair is None:
            log.warning("%s: Dial: unable to create channel for %s", chan.name, target)
            return
        callee, far = pair
        resource = target.partition("/")[2]
        for name, value in chan.inheritable_variables():
            callee.variables[name.lstrip("_")] = value
            far.variables[name.lstrip("_")] = value
        callee.set_variable("DIALEDPEERNUMBER", resource)
        callee.cdr.enabled = False
        callee.exten = chan.exten
        # Asterisk 22 (c2c-a-completed): the callee's caller ID is the caller's exten with the
        # caller's connected-line name, its connected line the caller's caller ID.
        callee.cid_num, callee.cid_name = chan.exten, chan.conn_name
        callee.conn_num, callee.conn_name = chan.cid_num, chan.cid_name
        self.apps.newexten(callee, "AppDial", "(Outgoing Line)")
        callee.set_callerid(None, None)
        callee.set_connected(callee.conn_num, callee.conn_name)
        far.set_variable("DIALEDPEERNUMBER", resource)
        far.conn_num, far.conn_name = callee.cid_num, callee.cid_name
        far.set_callerid(callee.conn_num, callee.conn_name)
        far.set_connected(far.conn_num, far.conn_name)
        if not self.pbx.dialplan.exists(far.context, far.exten, 1):
            log.info("%s: Dial: no extension %s in context %s", chan.name, far.exten, far.context)
            self.pbx.fail_pair(callee, far)
            return
        self.pbx.emit_local_bridge(callee, far)
        self.pbx.emit(
            "DialBegin", "call,all", chan.snapshot() + callee.snapshot("Dest") + f"DialString: {resource}\r\n"
        )
        callee.dial_queue = _TaggedQueue(self.queue, callee)
        far.pbx_task = self.pbx.spawn(self.pbx.run_pbx(far), name=f"pbx {far.name}")
        self.callees.append((callee, far, resource))

    async def ring(self) -> tuple[Channel | None, str]:
        chan = self.chan
        chan.dial_queue = _TaggedQueue(self.queue, chan)
        if len(self.callees) == 1:  # as app_dial, which forwards voice and DTMF to a single callee
            chan.ringing_callee = self.callees[0][0]
        try:
            return await self._ring()
        finally:
            chan.ringing_callee = None

    async def _ring(self) -> tuple[Channel | None, str]:
        chan = self.chan
        pending = {c for c, _, _ in self.callees}
        outcomes: list[str] = []
        rang = False
        deadline = self.started + self.pbx.real(self.timeout) if self.timeout else None
        while pending:
            if chan.interrupted:
                # The caller hung up (Asterisk 22: Cause 16 on both halves of each callee, whose
                # ;2 Cdr says NO ANSWER); a redirect sets no cause.
                cause = 16 if chan.hangup_requested else 0
                return self.cancel_all(pending, "CANCEL", cause=cause), "CANCEL"
            try:
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
                who, control = await asyncio.wait_for(self.queue.get(), remaining)
            except TimeoutError:
                return self.cancel_all(pending, "NOANSWER"), "NOANSWER"
            if who is chan:
                continue  # the loop head sees the hang-up or redirect
            if who not in pending:
                continue
            if control == CONTROL_RINGING and not rang:
                rang = True
                ms = int((time.monotonic() - self.started) * 1000 * self.pbx.time_scale)
                chan.set_variable("RINGTIME", str(ms // 1000))
                chan.set_variable("RINGTIME_MS", str(ms))
                self.pbx.emit(
                    "DialState",
                    "call,all",
                    chan.snapshot() + who.snapshot("Dest") + "DialStatus: RINGING\r\n",
                )
                if chan.state != STATE_UP:
                    chan.indicate(CONTROL_RINGING)
            elif control == CONTROL_ANSWER:
                pending.discard(who)
                resource = next(r for c, _, r in self.callees if c is who)
                chan.set_variable("DIALSTATUS", "ANSWER")
                chan.set_variable("DIALEDPEERNAME", who.name)
                chan.set_variable("DIALEDPEERNUMBER", resource)
                who.exten = ""  # Asterisk clears the answered callee's exten before DialEnd
                self.cancel_all(pending, "CANCEL", cause=26)
                self.dial_end(who, "ANSWER")
                who.dial_queue = None
                return who, "ANSWER"
            elif control in (CONTROL_BUSY, CONTROL_CONGESTION, CONTROL_HANGUP):
                pending.discard(who)
                who.dial_queue = None
                if control == CONTROL_HANGUP:
                    status = {17: "BUSY", 34: "CONGESTION", 1: "CHANUNAVAIL", 3: "CHANUNAVAIL"}.get(
                        who.hangupcause, "NOANSWER"
                    )
                else:
                    status = "BUSY" if control == CONTROL_BUSY else "CONGESTION"
                    who.hangupcause = 0
                self.dial_end(who, status)
                chan.cdr.close(self.records[who], DIAL_DISPOSITION[status])
                who.hangup()
                outcomes.append(status)
            elif control == CONTROL_INTERRUPT:
                continue
        for status in ("BUSY", "CONGESTION", "CHANUNAVAIL"):
            if status in outcomes:
                return None, status
        return None, "NOANSWER"

    def cancel_all(self, pending: set[Channel], status: str, cause: int = 0) -> None:
        """End the callees still ringing; 26 (answered elsewhere) when another one answered."""
        for callee in [c for c, _, _ in self.callees if c in pending]:
            callee.dial_queue = None
            self.dial_end(callee, status)
            self.chan.cdr.close(self.records[callee], DIAL_DISPOSITION[status])
            callee.hangupcause = cause
            callee.hangup()
        pending.clear()

    async def bridge(self, callee: Channel) -> int:
        chan = self.chan
        if chan.state != STATE_UP:
            await self.apps.answer_channel(chan, wait_media=False)
        if "U" in self.options:
            routine, _, args = self.options["U"].partition("^")
            spec = routine.replace("^", ",")
            argv = args.split("^") if args else []
            if "," not in spec:
                spec = f"{spec},s,1"
            await self.apps.run_subroutine(callee, spec, argv)
        bridge = Bridge(self.pbx)
        self.apps.newexten(callee, "AppDial", "(Outgoing Line)")
        bridge.enter(callee)
        bridge.enter(chan)
        bridge.set_peers()
        limit = warning = None
        if "L" in self.options:
            parts = (self.options["L"].split(":") + ["", ""])[:3]
            limit = _float(parts[0], 0.0) / 1000 or None
            warning = _float(parts[1], 0.0) / 1000 or None
        bridged_at = time.monotonic()
        callee_left = caller_left = False
        warned = False
        while True:
            if callee.hangup_requested or callee.bridge is not bridge or callee.async_goto is not None:
                callee_left = True
                break
            if chan.interrupted:
                caller_left = True
                break
            elapsed = (time.monotonic() - bridged_at) * self.pbx.time_scale
            wait_for = None
            if limit is not None:
                if elapsed >= limit:
                    break
                wait_for = limit - elapsed
                if warning is not None and not warned:
                    if elapsed >= limit - warning:
                        warned = True
                        self.pbx.spawn(self.apps.play_quietly(chan, chan.get_variable("LIMIT_WARNING_FILE")))
                    else:
                        wait_for = limit - warning - elapsed
            await bridge.wait_change(wait_for)
        if callee_left and callee.async_goto is not None and not callee.hangup_requested:
            bridge.clear_peers()
            bridge.leave(callee)  # redirected elsewhere: it lives on in its own dialplan
        elif callee_left:
            bridge.clear_peers()
            bridge.leave(callee)
            if not callee.hangupcause:
                callee.hangupcause = 16
            callee.hangup()
            if not chan.hangupcause:
                chan.hangupcause = callee.hangupcause
        elif caller_left:
            bridge.clear_peers()
            bridge.leave(chan)
            callee.hangupcause = 16
            bridge.leave(callee)
            callee.hangup()
        else:  # the L() limit ran out: the callee goes, the caller hears the timeout file
            bridge.clear_peers()
            bridge.leave(callee)
            callee.hangupcause = 16
            callee.hangup()
            timeout_file = chan.get_variable("LIMIT_TIMEOUT_FILE")
            if timeout_file:
                try:
                    await self.apps.stream(chan, timeout_file)
                except Interrupted:
                    caller_left = True
        bridge.destroy()
        answered_ms = int((self.pbx.now() - (chan.answered_at or self.pbx.now())) * 1000)
        dialed_ms = int((self.pbx.now() - chan.created) * 1000)
        chan.set_variable("ANSWEREDTIME", str(answered_ms // 1000))
        chan.set_variable("ANSWEREDTIME_MS", str(answered_ms))
        chan.set_variable("DIALEDTIME", str(dialed_ms // 1000))
        chan.set_variable("DIALEDTIME_MS", str(dialed_ms))
        chan.set_variable("DIALSTATUS", "ANSWER")
        chan.cdr.close(self.records[callee], "ANSWERED")
        if chan.hangup_requested:
            return -1
        if chan.async_goto is not None:
            return 0
        return 0 if "g" in self.options else -1


@dataclass(frozen=True)
class _TimeLimit:
    """L(limit[:warning[:repeat]]) of Bridge() with the LIMIT_* variables of the channel running it."""

    seconds: float
    warning: float | None
    to_caller: bool
    to_callee: bool
    warning_file: str
    timeout_file: str
    connect_file: str

    @classmethod
    def of(cls, chan: Channel, spec: str) -> _TimeLimit | None:
        parts = (spec.split(":") + ["", ""])[:3]
        limit_ms = int(_float(parts[0], 0.0))
        warning_ms = int(_float(parts[1], 0.0))
        if limit_ms <= 0:
            log.warning("%s: Bridge does not accept L(%s)", chan.name, parts[0])
            return None
        if warning_ms > limit_ms and not _float(parts[2], 0.0):
            warning_ms = 0  # a first warning after the end, never repeated: none
        caller = chan.get_variable("LIMIT_PLAYAUDIO_CALLER")
        callee = chan.get_variable("LIMIT_PLAYAUDIO_CALLEE")
        to_caller = True if caller is None else _ast_true(caller)
        to_callee = False if callee is None else _ast_true(callee)
        if not to_caller and not to_callee:
            to_caller = True
        timeout_file = chan.get_variable("LIMIT_TIMEOUT_FILE") or ""
        connect_file = chan.get_variable("LIMIT_CONNECT_FILE") or ""
        if not warning_ms and not timeout_file and not connect_file:
            log.warning("%s: Bridge L(%s), no warning nor sound: Asterisk sets no limit", chan.name, spec)
            return None
        return cls(
            seconds=limit_ms / 1000,
            warning=warning_ms / 1000 if 0 < warning_ms < limit_ms else None,
            to_caller=to_caller,
            to_callee=to_callee,
            warning_file=chan.get_variable("LIMIT_WARNING_FILE") or "timeleft",
            timeout_file=timeout_file,
            connect_file=connect_file,
        )


def _ast_true(value: str) -> bool:
    """Asterisk's ast_true: yes, true, y, t, 1, on (any case); anything else, the empty value too, is no."""
    return value.strip().lower() in ("yes", "true", "y", "t", "1", "on")


def _float(text: str, default: float) -> float:
    try:
        return float(text.strip())
    except (ValueError, AttributeError):
        return default
