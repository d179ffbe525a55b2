"""FastAGI: the scripts apps name in `PbxApp.agi_scripts`, served by the pbx process.

A call to `AGI(agi://host:port/callcard)` runs the app's handler with an AgiCall; the connection is
closed when the handler returns or the channel hangs up, because Asterisk
keeps the channel (and its call record) running until the AGI server closes.
The protocol is ours, not panoramisk's fast_agi (its server spins forever on a
client that disconnects before its agi_* block is complete), so panoramisk stays
in telephony/ami.py alone.
"""

import asyncio
import contextlib
import dataclasses
import logging
import re

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10


class AgiHangup(Exception):
    """The channel hung up: no command but GET VARIABLE works any more."""


@dataclasses.dataclass
class AgiResult:
    code: int
    result: str
    data: str
    line: str

    @property
    def value(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return 0


_RESULT = re.compile(r"^(?P<code>\d{3})[ -](?:result=(?P<result>\S*) ?(?P<rest>.*))?$")


class AgiCall:
    """One FastAGI session: the agi_* headers and the commands of the AGI protocol."""

    def __init__(
        self, headers: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server=None
    ):
        self.headers = headers
        self.reader, self.writer = reader, writer
        self.server = server
        self.hungup = False

    @property
    def uniqueid(self) -> str:
        return self.headers.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.headers.get("agi_channel", "")

    def arg(self, n: int, default: str = "") -> str:
        return self.headers.get(f"agi_arg_{n}", default)

    async def command(self, command: str) -> AgiResult:
        if self.hungup and not command.upper().startswith(("GET VARIABLE", "GET FULL VARIABLE")):
            raise AgiHangup(command)
        self.writer.write(f"{command}\n".encode())
        await self.writer.drain()
        line = await self._line()
        if line == "HANGUP":
            # Asterisk announces a hang-up on its own line; the command's answer follows.
            self.hungup = True
            line = await self._line()
        match = _RESULT.match(line)
        if not match:
            raise AgiHangup(f"{command}: unexpected answer {line!r}")
        # The data after the result: "(value)" for GET VARIABLE, "endpos=3404" for STREAM FILE.
        rest = match["rest"] or ""
        data = rest[1:-1] if rest.startswith("(") and rest.endswith(")") else rest
        result = AgiResult(int(match["code"]), match["result"] or "", data, line)
        if result.code == 511:
            self.hungup = True
            raise AgiHangup(command)
        if result.code != 200:
            log.warning("AGI %s on %s: %s", command, self.channel, line)
        return result

    async def _line(self) -> str:
        raw = await self.reader.readline()
        if not raw:
            self.hungup = True
            raise AgiHangup("the PBX closed the AGI connection")
        return raw.decode(errors="replace").rstrip("\r\n")

    # The commands the flows use, with Asterisk's argument quoting.
    async def answer(self):
        return await self.command("ANSWER")

    async def stream_file(self, name: str, escape_digits: str = "") -> AgiResult:
        return await self.command(f'STREAM FILE {name} "{escape_digits}"')

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str:
        result = await self.command(f"GET DATA {prompt} {timeout_ms} {max_digits}")
        if result.result == "-1":  # the caller hung up while keying
            self.hungup = True
            raise AgiHangup("GET DATA")
        return result.result

    async def get_variable(self, name: str) -> str | None:
        result = await self.command(f"GET VARIABLE {name}")
        return result.data if result.result == "1" else None

    async def set_variable(self, name: str, value: str):
        escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return await self.command(f'SET VARIABLE {name} "{escaped}"')

    async def say_digits(self, digits: str, escape_digits: str = ""):
        return await self.command(f'SAY DIGITS {digits} "{escape_digits}"')

    async def exec(self, application: str, *args: str) -> AgiResult:
        joined = ",".join(args)
        return await self.command(f'EXEC {application} "{joined}"' if args else f"EXEC {application}")

    async def hangup(self):
        result = await self.command("HANGUP")
        self.hungup = True
        return result


async def read_agi_headers(reader: asyncio.StreamReader) -> dict | None:
    try:
        block = await asyncio.wait_for(reader.readuntil(b"\n\n"), HEADER_TIMEOUT)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
        return None
    headers = {}
    for line in block.decode(errors="replace").splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            headers[key] = value
    return headers


# What the contract's [platform-agi] reads in PLATFORM_AGI_RESULT when a script could not serve the call.
UNAVAILABLE = "unavailable"
FAILED = "failed"


async def _tell_dialplan(call: AgiCall, result: str):
    """Let the dialplan take its fallback, unless the caller is gone or the connection with it."""
    with contextlib.suppress(AgiHangup, ConnectionError, asyncio.IncompleteReadError):
        await call.set_variable("PLATFORM_AGI_RESULT", result)


def make_agi_handler(server, scripts: dict):
    """The asyncio.start_server callback for one PBX server's FastAGI port: script name -> handler(call)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = writer.get_extra_info("peername")
        try:
            headers = await read_agi_headers(reader)
            if headers is None:
                log.warning("FastAGI %s: client left before sending its agi_* block", peer)
                return
            script = headers.get("agi_network_script", "").split("?")[0].strip("/")
            handler = scripts.get(script)
            call = AgiCall(headers, reader, writer, server)
            if handler is None:
                log.error("FastAGI %s: no script %r (channel %s)", peer, script, headers.get("agi_channel"))
                await _tell_dialplan(call, UNAVAILABLE)
                return
            try:
                await handler(call)
            except AgiHangup:
                log.info("FastAGI %s: %s hung up during %s", peer, call.channel, script)
            except (ConnectionError, asyncio.IncompleteReadError):
                log.warning("FastAGI %s: connection lost during %s", peer, script)
            except Exception:
                log.exception("FastAGI script %s failed on %s", script, call.channel)
                await _tell_dialplan(call, FAILED)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    return handle
