"""A FastAGI server that plays back the recorded `agi>>>` commands, and the comparison of what
the simulator answered with what Asterisk answered.

The n-th AGI connection gets the n-th recorded session. Each session is
replayed step by step: a recorded `agi<<<` frame is read from the socket (up to
the line that ends it), a recorded `agi>>>` command is sent once the previous
read is done, after the recorded pause (scaled). The recorded sessions of the
traces never overlap, so a session is the frames from one `agi_*` block to
the next.
"""

import asyncio
import re
import time
from dataclasses import dataclass, field

from pbxsim.harness import RECORDED_AGI_ADDRESS
from pbxsim.tracefile import AGI_IN, AGI_OUT
from tests.pbxsim.compare import normalize

AGI_HOST = "127.0.0.1"
# How long past its recorded time (scaled) a line from the simulator may come before the session gives up.
AGI_SLACK = 3.0

_RESULT_LINE = re.compile(r"^\d{3} ")
_ENDPOS = re.compile(r"^(.*) endpos=(\d+)$")
_VALUE = re.compile(r"^(200 result=1) \((-?\d+)\)$")
# Variables that hold whole seconds measured on the call, and the sampling position (8 kHz samples)
# where a playback stopped, depend on timing: a simulator rounds at another instant than Asterisk did,
# and each real millisecond the machine is late becomes `time scale` simulated milliseconds.
TIMING_VARIABLES = frozenset({"ANSWEREDTIME", "DIALEDTIME", "CDR(duration)", "CDR(billsec)"})
SAMPLES_PER_SECOND = 8000
# How late (real seconds) a loaded machine may run a timer; times this by the time scale.
REAL_JITTER = 0.05
# Differs per Asterisk process and thread; nothing reads it.
PROCESS_DEPENDENT_KEYS = frozenset({"agi_threadid"})


def agi_sessions(trace):
    sessions = []
    for frame in trace.frames:
        if frame.direction == AGI_IN and frame.lines and frame.lines[0].startswith("agi_"):
            sessions.append([frame])
        elif frame.direction in (AGI_IN, AGI_OUT):
            if not sessions:
                raise ValueError(f"{trace.name}: an AGI frame at +{frame.time} before any agi_* block")
            sessions[-1].append(frame)
    return sessions


@dataclass
class Exchange:
    """What was read from the simulator for one recorded `agi<<<` frame, and the command before it."""

    command: str | None
    lines: list[str] = field(default_factory=list)
    ended_by: str = "line"  # "line", "eof" or "timeout"


@dataclass
class SessionLog:
    exchanges: list[Exchange] = field(default_factory=list)
    done: bool = False


def _ends_frame(recorded_lines, line):
    if recorded_lines[0].startswith("agi_"):
        return line == ""
    last = recorded_lines[-1]
    if _RESULT_LINE.match(last):
        return bool(_RESULT_LINE.match(line))
    return line == last


class RecordedAgiServer:
    def __init__(self, sessions, time_scale, port, translate=lambda text: text, host=AGI_HOST):
        self.sessions = sessions
        self.time_scale = time_scale
        self.translate = translate
        self.host = host
        self.port = port
        self.logs = []
        self.unexpected_sessions = 0
        self.frames_done = 0  # recorded AGI frames played so far, over all sessions
        self._server = None
        self._tasks = set()

    async def __aenter__(self):
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        return self

    async def __aexit__(self, *exc_info):
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def all_done(self):
        return len(self.logs) == len(self.sessions) and all(log.done for log in self.logs)

    async def _serve(self, reader, writer):
        self._tasks.add(asyncio.current_task())
        try:
            if len(self.logs) >= len(self.sessions):
                self.unexpected_sessions += 1
                return
            log = SessionLog()
            session = self.sessions[len(self.logs)]
            self.logs.append(log)
            await self._play(session, log, reader, writer)
            log.done = True
        finally:
            self._tasks.discard(asyncio.current_task())
            writer.close()

    async def _play(self, session, log, reader, writer):
        command = None
        previous_time = session[0].time
        last_step = time.monotonic()
        for frame in session:
            budget = (frame.time - previous_time) / self.time_scale
            if frame.direction == AGI_OUT:
                await asyncio.sleep(max(0.0, last_step + budget - time.monotonic()))
                command = self.translate("\n".join(frame.lines))
                writer.write(command.encode() + b"\n")
                await writer.drain()
            else:
                exchange = Exchange(command)
                log.exchanges.append(exchange)
                await self._read_frame(frame, exchange, reader, budget + AGI_SLACK)
                if exchange.ended_by != "line":
                    return
            previous_time = frame.time
            last_step = time.monotonic()
            self.frames_done += 1

    async def _read_frame(self, frame, exchange, reader, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = await asyncio.wait_for(reader.readline(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                exchange.ended_by = "timeout"
                return
            except ConnectionError:
                raw = b""
            if not raw:
                exchange.ended_by = "eof"
                return
            # FastAGI lines end in LF; a CR would be kept and show in the comparison.
            line = raw.decode("utf-8", "replace").removesuffix("\n")
            # The simulator's dialplan names this server's port where Asterisk's named 4573.
            line = line.replace(f"{self.host}:{self.port}", RECORDED_AGI_ADDRESS)
            if frame.lines[0].startswith("agi_") and line == "":
                return
            exchange.lines.append(line)
            if _ends_frame(frame.lines, line):
                return


def _variable_of(command):
    parts = (command or "").split()
    if len(parts) >= 3 and parts[0] == "GET" and parts[1] == "VARIABLE":
        return parts[2]
    return None


def agi_line_matches(recorded, received, command, time_scale):
    """A result line as Asterisk sent it, except for the timing-dependent values above.

    Those may be off by the rounding (one second; 0.2 s of sound for endpos) plus the
    simulated time REAL_JITTER amounts to at `time_scale`.
    """
    slack = REAL_JITTER * time_scale
    recorded, received = normalize(recorded), normalize(received)
    if recorded == received:
        return True
    rec_endpos, sim_endpos = _ENDPOS.match(recorded), _ENDPOS.match(received)
    if rec_endpos and sim_endpos:
        return (
            rec_endpos.group(1) == sim_endpos.group(1)
            and abs(int(rec_endpos.group(2)) - int(sim_endpos.group(2))) <= (0.2 + slack) * SAMPLES_PER_SECOND
        )
    rec_value, sim_value = _VALUE.match(recorded), _VALUE.match(received)
    if rec_value and sim_value and _variable_of(command) in TIMING_VARIABLES:
        return abs(int(rec_value.group(2)) - int(sim_value.group(2))) <= 1 + slack
    return False


def _block(lines):
    return [(name, value.removeprefix(" ")) for name, _, value in (line.partition(":") for line in lines)]


def compare_agi_block(index, recorded_lines, received_lines):
    recorded, received = _block(recorded_lines), _block(received_lines)
    if [name for name, _ in recorded] != [name for name, _ in received]:
        return [
            f"AGI session {index}: agi_* keys differ\n    recorded:  {[n for n, _ in recorded]}"
            f"\n    simulator: {[n for n, _ in received]}"
        ]
    return [
        f"AGI session {index}: {name} recorded {normalize(want)!r}, simulator {normalize(got)!r}"
        for (name, want), (_, got) in zip(recorded, received, strict=True)
        if name not in PROCESS_DEPENDENT_KEYS and normalize(want) != normalize(got)
    ]


def compare_agi(server):
    """Differences between the recorded AGI sessions and what the simulator sent, one message each."""
    problems = []
    if server.unexpected_sessions:
        problems.append(f"{server.unexpected_sessions} AGI connection(s) more than recorded")
    for index, session in enumerate(server.sessions, start=1):
        if index > len(server.logs):
            problems.append(f"AGI session {index}: the simulator never connected")
            continue
        recorded_frames = [frame for frame in session if frame.direction == AGI_IN]
        exchanges = server.logs[index - 1].exchanges
        problems += compare_agi_block(index, recorded_frames[0].lines, exchanges[0].lines)
        recorded, received = [], []
        command = None
        for frame in session[1:]:
            if frame.direction == AGI_OUT:
                command = "\n".join(frame.lines)
            else:
                recorded += [(command, line) for line in frame.lines]
        for exchange in exchanges[1:]:
            received += [(exchange.command, line) for line in exchange.lines]
            if exchange.ended_by != "line":
                received.append((exchange.command, f"({exchange.ended_by})"))
        problem = _first_line_difference(index, recorded, received, server.time_scale)
        if problem:
            problems.append(problem)
    return problems


def _first_line_difference(index, recorded, received, time_scale):
    for i in range(max(len(recorded), len(received))):
        want = recorded[i] if i < len(recorded) else (None, "(nothing)")
        got = received[i] if i < len(received) else (None, "(nothing)")
        if not agi_line_matches(want[1], got[1], want[0], time_scale):
            rows = [f"    {'':>3} {'command':<40} {'recorded':<40} simulator"]
            for j in range(max(0, i - 3), min(max(len(recorded), len(received)), i + 3)):
                rec = recorded[j] if j < len(recorded) else (None, "(nothing)")
                sim = received[j] if j < len(received) else (None, "(nothing)")
                mark = ">>" if j == i else "  "
                rows.append(f"  {mark}{j + 1:>3} {rec[0] or sim[0] or '':<40} {rec[1]!r:<40} {sim[1]!r}")
            return f"AGI session {index}: lines differ at #{i + 1}\n" + "\n".join(rows)
    return None
