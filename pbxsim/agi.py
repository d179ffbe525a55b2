"""FastAGI client: what Asterisk's res_agi does for `AGI(agi://host:port/script)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shlex
import threading
from urllib.parse import urlsplit

from .apps import Exchange
from .channels import SOFTHANGUP_EXPLICIT, Channel, Interrupted, SubroutineDone
from .dialplan import DialplanError, split_args, substitute

log = logging.getLogger("pbxsim.agi")

DEAD = "511 Command Not Permitted on a dead channel or intercept routine\n"
# Commands res_agi allows once the channel has hung up.
ALLOWED_WHEN_DEAD = {
    "asyncagi break",
    "database del",
    "database deltree",
    "database get",
    "database put",
    "exec",
    "get full variable",
    "get variable",
    "noop",
    "set variable",
    "verbose",
}
MAX_LINE = 64 * 1024


class AgiSession:
    def __init__(
        self, pbx: Exchange, chan: Channel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self.pbx, self.chan, self.reader, self.writer = pbx, chan, reader, writer
        self.dead = False
        self.sent_hangup = False
        self.database = pbx.agi_database

    def send(self, text: str) -> None:
        self.writer.write(text.encode())

    def emit(self, event: str, body: str) -> None:
        self.chan.emit(event, "agi,all", body)

    async def run(self) -> None:
        while True:
            line = await self._next_line()
            if line is None:
                return
            line = line.strip()
            if not line:
                continue
            await self.handle(line)
            await self.writer.drain()

    async def _next_line(self) -> str | None:
        read = asyncio.ensure_future(self.reader.readline())
        try:
            while True:
                if not self.dead and self.chan.hangup_requested:
                    self.mark_dead()
                if self.dead:
                    data = await read
                    break
                if self.chan.interrupted:
                    return None  # redirected: Asterisk leaves AGI for the new dialplan location
                hang = asyncio.ensure_future(self.chan.pause(None))
                done, _ = await asyncio.wait({read, hang}, return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    hang.cancel()
                    data = read.result()
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return None
        finally:
            if not read.done():
                read.cancel()
        if not data:
            log.info("%s: the AGI server closed the connection", self.chan.name)
            return None
        return data.decode("utf-8", errors="replace")

    def mark_dead(self) -> None:
        self.dead = True
        if not self.sent_hangup:
            self.sent_hangup = True
            self.send("HANGUP\n")

    async def handle(self, line: str) -> None:
        chan = self.chan
        command_id = str(random.randint(1, 2**31 - 1))
        self.emit("AGIExecStart", f"CommandId: {command_id}\r\nCommand: {line}\r\n")
        try:
            words = shlex.split(line, posix=True)
        except ValueError:
            words = line.split()
        name, args = self.match(words)
        if name is None:
            self.send("510 Invalid or unknown command\n")
            self.emit(
                "AGIExecEnd",
                f"CommandId: {command_id}\r\nCommand: {line}\r\n"
                "ResultCode: 510\r\nResult: Invalid or unknown command\r\n",
            )
            return
        if (self.dead or chan.hangup_requested) and name not in ALLOWED_WHEN_DEAD:
            if not self.dead:
                self.mark_dead()
            self.send(DEAD)
            self.emit(
                "AGIExecEnd",
                f"CommandId: {command_id}\r\nCommand: {line}\r\nResultCode: 511\r\n"
                "Result: Command Not Permitted on a dead channel or intercept routine\r\n",
            )
            return
        try:
            result, outcome = await getattr(self, "cmd_" + name.replace(" ", "_"))(args)
        except Interrupted:
            result, outcome = "200 result=-1", "Success"
        except DialplanError as exc:
            log.error("%s: AGI %s: %s", chan.name, line, exc)
            result, outcome = "200 result=-1", "Failure"
        self.send(result + "\n")
        self.emit(
            "AGIExecEnd",
            f"CommandId: {command_id}\r\nCommand: {line}\r\n"
            f"ResultCode: {result[:3]}\r\nResult: {outcome}\r\n",
        )

    COMMANDS = (
        "answer",
        "asyncagi break",
        "channel status",
        "control stream file",
        "database del",
        "database deltree",
        "database get",
        "database put",
        "exec",
        "get data",
        "get full variable",
        "get option",
        "get variable",
        "hangup",
        "noop",
        "receive char",
        "say alpha",
        "say digits",
        "say number",
        "set autohangup",
        "set callerid",
        "set context",
        "set extension",
        "set music",
        "set priority",
        "set variable",
        "stream file",
        "verbose",
        "wait for digit",
    )

    def match(self, words: list[str]) -> tuple[str | None, list[str]]:
        lowered = [w.lower() for w in words]
        for size in (3, 2, 1):
            candidate = " ".join(lowered[:size])
            if len(lowered) >= size and candidate in self.COMMANDS:
                return candidate, words[size:]
        return None, []

    # -- commands --------------------------------------------------------------------------------

    async def cmd_answer(self, args: list[str]) -> tuple[str, str]:
        # As Answer(): returns at the first media frame from the far end, at most 500 ms later.
        await self.pbx.apps.answer_channel(self.chan)
        return "200 result=0", "Success"

    async def cmd_asyncagi_break(self, args: list[str]) -> tuple[str, str]:
        return "200 result=0", "Success"

    async def cmd_channel_status(self, args: list[str]) -> tuple[str, str]:
        target = self.pbx.find_channel(args[0]) if args else self.chan
        if target is None:
            return "200 result=-1", "Success"
        return f"200 result={target.state}", "Success"

    async def _stream(self, name: str, escape: str) -> tuple[str, str]:
        try:
            digit, samples = await self.pbx.apps.stream(self.chan, name, escape)
        except Interrupted as exc:
            return f"200 result=-1 endpos={exc.args[0] if exc.args else 0}", "Success"
        self.chan.set_variable("PLAYBACKSTATUS", "SUCCESS")
        return f"200 result={ord(digit) if digit else 0} endpos={samples}", "Success"

    async def cmd_stream_file(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        return await self._stream(args[0], args[1] if len(args) > 1 else "")

    cmd_control_stream_file = cmd_stream_file

    async def cmd_get_option(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        escape = args[1] if len(args) > 1 else ""
        digit, samples = await self.pbx.apps.stream(self.chan, args[0], escape)
        if digit is None and len(args) > 2:
            timeout = float(args[2]) / 1000 if args[2].lstrip("-").isdigit() else 5.0
            digit = await self.chan.wait_digit(timeout if timeout > 0 else 5.0)
            if digit is not None and digit not in escape:
                digit = None
        return f"200 result={ord(digit) if digit else 0} endpos={samples}", "Success"

    async def cmd_get_data(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        timeout = float(args[1]) / 1000 if len(args) > 1 and args[1].isdigit() else 6.0
        max_digits = int(args[2]) if len(args) > 2 and args[2].isdigit() else 1024
        digits, timed_out = await self.pbx.apps.collect_digits(
            self.chan, [args[0]], max_digits, timeout or 6.0
        )
        return f"200 result={digits}{' (timeout)' if timed_out else ''}", "Success"

    async def cmd_say_digits(self, args: list[str]) -> tuple[str, str]:
        escape = args[1] if len(args) > 1 else ""
        for ch in args[0] if args else "":
            if ch.isdigit():
                digit, _ = await self.pbx.apps.stream(self.chan, f"digits/{ch}", escape)
                if digit:
                    return f"200 result={ord(digit)}", "Success"
        return "200 result=0", "Success"

    cmd_say_number = cmd_say_digits

    async def cmd_say_alpha(self, args: list[str]) -> tuple[str, str]:
        escape = args[1] if len(args) > 1 else ""
        for ch in args[0] if args else "":
            digit, _ = await self.pbx.apps.stream(self.chan, f"letters/{ch.lower()}", escape)
            if digit:
                return f"200 result={ord(digit)}", "Success"
        return "200 result=0", "Success"

    async def cmd_wait_for_digit(self, args: list[str]) -> tuple[str, str]:
        ms = int(args[0]) if args and args[0].lstrip("-").isdigit() else -1
        digit = await self.chan.wait_digit(None if ms < 0 else ms / 1000)
        return f"200 result={ord(digit) if digit else 0}", "Success"

    async def cmd_receive_char(self, args: list[str]) -> tuple[str, str]:
        return "200 result=0", "Success"

    async def cmd_set_variable(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        self.pbx.apps.assign(self.chan, args[0], args[1] if len(args) > 1 else "")
        return "200 result=1", "Success"

    async def cmd_get_variable(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        name = args[0]
        if name.endswith(")") and "(" in name:
            try:
                value: str | None = self.chan.call_function(*_split_function(name))
            except DialplanError:
                value = None
        else:
            value = self.chan.get_variable(name)
        if value is None:
            return "200 result=0", "Success"
        return f"200 result=1 ({value})", "Success"

    async def cmd_get_full_variable(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        target = self.pbx.find_channel(args[1]) if len(args) > 1 else self.chan
        if target is None:
            return "200 result=0", "Success"
        return f"200 result=1 ({substitute(args[0], target)})", "Success"

    async def cmd_exec(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        app = args[0]
        data = " ".join(args[1:])
        if app.lower() not in self.pbx.apps.table:
            log.error(
                "%s: AGI EXEC: application %s() is not implemented by the simulator", self.chan.name, app
            )
            return "200 result=-2", "Unknown Result"
        data = substitute(data, self.chan)
        if not self.chan.in_hangup_handler:
            self.chan.cdr.on_app(app, data)
        log.info("%s: AGI EXEC %s(%s)", self.chan.name, app, data)
        try:
            res = await self.pbx.apps.execute(self.chan, app, data)
        except SubroutineDone:
            res = 0
        return f"200 result={res}", "Success" if res == 0 else "Unknown Result"

    async def cmd_hangup(self, args: list[str]) -> tuple[str, str]:
        target = self.pbx.find_channel(args[0]) if args else self.chan
        if target is None:
            return "200 result=-1", "Success"
        # No cause is set: a call that nothing else gave one ends with Cause 0, as on Asterisk.
        target.soft_hangup(SOFTHANGUP_EXPLICIT)
        return "200 result=1", "Success"

    async def cmd_noop(self, args: list[str]) -> tuple[str, str]:
        return "200 result=0", "Success"

    async def cmd_verbose(self, args: list[str]) -> tuple[str, str]:
        log.info("%s: AGI: %s", self.chan.name, args[0] if args else "")
        return "200 result=1", "Success"

    async def cmd_set_callerid(self, args: list[str]) -> tuple[str, str]:
        value = args[0] if args else ""
        if "<" in value:
            name, _, num = value.rpartition("<")
            self.chan.set_callerid(num.rstrip(">").strip(), name.strip().strip('"'))
        else:
            self.chan.set_callerid(value, None)
        return "200 result=1", "Success"

    async def cmd_set_context(self, args: list[str]) -> tuple[str, str]:
        if args:
            self.chan.context = args[0]
        return "200 result=0", "Success"

    async def cmd_set_extension(self, args: list[str]) -> tuple[str, str]:
        if args:
            self.chan.exten = args[0]
        return "200 result=0", "Success"

    async def cmd_set_priority(self, args: list[str]) -> tuple[str, str]:
        if args:
            number = self.pbx.dialplan.resolve_priority(self.chan.context, self.chan.exten, args[0])
            if number is not None:
                self.chan.priority = number
        return "200 result=0", "Success"

    async def cmd_set_music(self, args: list[str]) -> tuple[str, str]:
        if args and args[0].lower() == "on":
            self.chan.start_moh(args[1] if len(args) > 1 else "")
        else:
            self.chan.stop_moh()
        return "200 result=0", "Success"

    async def cmd_set_autohangup(self, args: list[str]) -> tuple[str, str]:
        seconds = float(args[0]) if args and args[0].replace(".", "", 1).isdigit() else 0
        self.pbx.absolute_timeout(self.chan, seconds)
        return "200 result=0", "Success"

    async def cmd_database_get(self, args: list[str]) -> tuple[str, str]:
        if len(args) < 2:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        value = self.database.get((args[0], args[1]))
        return ("200 result=0", "Success") if value is None else (f"200 result=1 ({value})", "Success")

    async def cmd_database_put(self, args: list[str]) -> tuple[str, str]:
        if len(args) < 3:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        self.database[(args[0], args[1])] = args[2]
        return "200 result=1", "Success"

    async def cmd_database_del(self, args: list[str]) -> tuple[str, str]:
        if len(args) < 2:
            return "520 Invalid command syntax.  Proper usage not available.", "Usage"
        found = self.database.pop((args[0], args[1]), None) is not None
        return f"200 result={int(found)}", "Success"

    async def cmd_database_deltree(self, args: list[str]) -> tuple[str, str]:
        family = args[0] if args else ""
        for key in [k for k in self.database if k[0] == family]:
            del self.database[key]
        return "200 result=1", "Success"


def _split_function(text: str) -> tuple[str, str]:
    name, _, rest = text.partition("(")
    return name, rest[:-1]


def agi_environment(chan: Channel, url: str, script: str, args: list[str]) -> str:
    lines = [
        ("agi_network", "yes"),
        ("agi_network_script", script),
        ("agi_request", url),
        ("agi_channel", chan.name),
        ("agi_language", chan.language),
        ("agi_type", chan.tech),
        ("agi_uniqueid", chan.uniqueid),
        ("agi_version", "22.10.1"),
        ("agi_callerid", chan.cid_num or "unknown"),
        ("agi_calleridname", chan.cid_name or "unknown"),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", "unknown"),
        ("agi_rdnis", "unknown"),
        ("agi_context", chan.context),
        ("agi_extension", chan.exten),
        ("agi_priority", str(chan.priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", chan.accountcode),
        ("agi_threadid", str(threading.get_ident())),
    ]
    lines += [(f"agi_arg_{i}", a) for i, a in enumerate(args, 1)]
    return "".join(f"{k}: {v}\n" for k, v in lines) + "\n"


async def run_agi(pbx: Exchange, chan: Channel, url: str, args: list[str]) -> int:
    parts = urlsplit(url)
    if parts.scheme not in ("agi", "hagi"):
        log.error("%s: AGI(%s): only agi:// (FastAGI) is supported by the simulator", chan.name, url)
        chan.set_variable("AGISTATUS", "FAILURE")
        return 0
    host, port = parts.hostname or "127.0.0.1", parts.port or 4573
    script = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=MAX_LINE), pbx.settings.agi_connect_timeout
        )
    except (TimeoutError, OSError) as exc:
        log.warning("%s: AGI %s: cannot connect: %s", chan.name, url, exc)
        chan.set_variable("AGISTATUS", "FAILURE")
        return 0
    log.info("%s: AGI session with %s", chan.name, url)
    session = AgiSession(pbx, chan, reader, writer)
    try:
        writer.write(agi_environment(chan, url, script, args).encode())
        await session.run()
    except (ConnectionError, OSError) as exc:
        log.warning("%s: AGI %s: connection lost: %s", chan.name, url, exc)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    log.info("%s: AGI session with %s ended", chan.name, url)
    if chan.hangup_requested or session.dead:
        chan.set_variable("AGISTATUS", "HANGUP")
        return -1
    chan.set_variable("AGISTATUS", "SUCCESS")
    return 0


def agi_application(pbx: Exchange):
    """The AGI() dialplan application, bound to its exchange."""

    async def agi(chan: Channel, data: str) -> int:
        args = split_args(data)
        return await run_agi(pbx, chan, args[0], args[1:])

    return agi
