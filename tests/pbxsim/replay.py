"""Replaying a recorded trace against a running simulator and listing the differences.

Actions go out at their recorded time divided by the time scale. Because the
simulator's clock and ours drift by a few milliseconds, each action also waits
(up to ACTION_BARRIER seconds) until the simulator has sent, per channel, as many
compared events and the same responses and AGI lines as Asterisk had sent
before that action: the action then meets the call in the same state it met
on the real PBX, whatever the machine's load. A simulator that never catches
up is not hidden: the action goes out anyway and the comparison shows the gap.
"""

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

from pbxsim.amiwire import AmiConnection, ConnectionClosed, open_logged_in
from pbxsim.tracefile import AGI_IN, AGI_OUT, AMI_IN, AMI_OUT, CLOSED_MARK
from tests.pbxsim.compare import (
    COMPARED_EVENTS,
    ChannelKeys,
    compare_channels,
    compare_responses,
    compared_event_counts,
)
from tests.pbxsim.fastagi import RecordedAgiServer, agi_sessions, compare_agi

# Real seconds an action may wait for the simulator to reach the recorded state.
ACTION_BARRIER = 2.0
# Real seconds, beyond the recorded end (scaled), to wait for the simulator's last recorded events.
END_SLACK = 3.0
# The simulator is done when it has sent nothing for this long after the recorded events came.
QUIET = 0.3
# Login traces: how far a response's delay may be from the recorded one (seconds, or a fraction of it).
DELAY_TOLERANCE = 0.3
DELAY_TOLERANCE_FRACTION = 0.3


@dataclass
class Prerequisites:
    """What the recording had received when it sent a frame."""

    events: Counter
    responses: frozenset
    agi_frames: int


@dataclass
class ReplayResult:
    received: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _prerequisites(trace, keys):
    """For each `>>>` frame of the trace, the Prerequisites before it."""
    events = Counter()
    responses = set()
    agi_frames = 0
    found = []
    for frame in trace.frames:
        if frame.direction == AMI_OUT:
            found.append(Prerequisites(Counter(events), frozenset(responses), agi_frames))
        elif frame.direction == AMI_IN:
            if frame.event in COMPARED_EVENTS:
                events[keys.key_for(frame)] += 1
            elif frame.is_response:
                responses.add(frame.get("ActionID"))
        elif frame.direction in (AGI_IN, AGI_OUT):
            agi_frames += 1
    return found


class _Stream:
    """The simulator's AMI stream as it arrives, keyed live so actions can wait on it."""

    def __init__(self, connection):
        self.connection = connection
        self.frames = []
        self.keys = ChannelKeys()
        self.events = Counter()
        self.responses = set()
        self.closed = False
        self.closed_at = None
        self.last_frame_at = time.monotonic()
        self.changed = asyncio.Event()

    async def run(self):
        try:
            while True:
                frame = await self.connection.read_frame(timeout=None)
                self.frames.append(frame)
                self.keys.learn(frame)
                if frame.event in COMPARED_EVENTS:
                    self.events[self.keys.key_for(frame)] += 1
                elif frame.is_response:
                    self.responses.add(frame.get("ActionID"))
                self.last_frame_at = frame.time
                self.changed.set()
        except (ConnectionClosed, ConnectionError):
            self.closed = True
            self.closed_at = time.monotonic()
            self.changed.set()

    async def wait_until(self, condition, timeout):
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                return condition()
            self.changed.clear()
            # AGI progress does not set `changed`, so poll at least every 10 ms.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.01))
        return True


def _reached(stream, agi_server, prerequisites):
    def reached():
        if any(stream.events[key] < count for key, count in prerequisites.events.items()):
            return False
        if not prerequisites.responses <= stream.responses:
            return False
        return agi_server is None or agi_server.frames_done >= prerequisites.agi_frames

    return reached


def _translator(recorded_keys, stream):
    """Rewrites recorded channel names (whose sequence digits differ) into the simulator's names."""

    def translate(text):
        for key, recorded_name in sorted(recorded_keys.full_names.items(), key=lambda item: -len(item[1])):
            if recorded_name in text and key in stream.keys.full_names:
                text = text.replace(recorded_name, stream.keys.full_names[key])
        return text

    return translate


def _describe_missing(stream, agi_server, prerequisites):
    missing = [
        f"{count - stream.events[key]} event(s) of {key}"
        for key, count in prerequisites.events.items()
        if stream.events[key] < count
    ]
    missing += [
        f"the response to {action_id}" for action_id in sorted(prerequisites.responses - stream.responses)
    ]
    if agi_server is not None and agi_server.frames_done < prerequisites.agi_frames:
        missing.append(f"{prerequisites.agi_frames - agi_server.frames_done} AGI frame(s)")
    return ", ".join(missing)


async def replay_trace(trace, host, port, time_scale, agi_port):
    """Log in, replay the trace's actions and AGI sessions; what the simulator sent and the differences."""
    result = ReplayResult()
    recorded = [frame for frame in trace.frames if frame.direction == AMI_IN]
    recorded_keys = ChannelKeys()
    for frame in recorded:
        recorded_keys.learn(frame)
    prerequisites = _prerequisites(trace, recorded_keys)
    final = Prerequisites(
        compared_event_counts(recorded, recorded_keys),
        frozenset(frame.get("ActionID") for frame in recorded if frame.is_response),
        sum(1 for frame in trace.frames if frame.direction in (AGI_IN, AGI_OUT)),
    )

    connection = await open_logged_in(host, port)
    stream = _Stream(connection)
    translate = _translator(recorded_keys, stream)
    sessions = agi_sessions(trace)
    agi_server = RecordedAgiServer(sessions, time_scale, agi_port, translate) if sessions else None
    async with contextlib.AsyncExitStack() as stack:
        if agi_server is not None:
            await stack.enter_async_context(agi_server)
        reader = asyncio.create_task(stream.run())
        stack.callback(reader.cancel)
        start = time.monotonic()
        actions = [frame for frame in trace.frames if frame.direction == AMI_OUT]
        for action, needs in zip(actions, prerequisites, strict=True):
            await asyncio.sleep(max(0.0, start + action.time / time_scale - time.monotonic()))
            if not await stream.wait_until(_reached(stream, agi_server, needs), ACTION_BARRIER):
                result.notes.append(
                    f"action {action.get('ActionID')} (+{action.time:.3f}) sent without "
                    + _describe_missing(stream, agi_server, needs)
                )
            headers = [(name, translate(value)) for name, value in action.headers]
            with contextlib.suppress(ConnectionError):
                await connection.send(headers)
        last_action = actions[-1].time if actions else 0.0
        budget = (trace.end_time - last_action) / time_scale + END_SLACK
        if not await stream.wait_until(_reached(stream, agi_server, final), budget):
            result.notes.append("at the end, still missing " + _describe_missing(stream, agi_server, final))
        await stream.wait_until(lambda: time.monotonic() - stream.last_frame_at >= QUIET, END_SLACK)
        await connection.close()
    result.received = stream.frames
    result.problems += compare_responses(recorded, stream.frames)
    result.problems += compare_channels(recorded, stream.frames)
    if agi_server is not None:
        result.problems += compare_agi(agi_server)
    return result


async def replay_login_trace(trace, host, port):
    """The traces that start at the banner: banner, responses, their delays and the close, in real time.

    These run with the simulator at time scale 1 (whether it scales the 1 s delay after a bad
    secret or not, the answer must then come after about 1 s) and log in with the recorded frames.
    """
    result = ReplayResult()
    connected = time.monotonic()
    connection = await AmiConnection.open(host, port)
    recorded_banner = trace.frames[0].lines[0]
    if connection.banner != recorded_banner:
        result.problems.append(f"banner recorded {recorded_banner!r}, simulator {connection.banner!r}")
    stream = _Stream(connection)
    reader = asyncio.create_task(stream.run())
    sent_at = {}
    try:
        for frame in trace.frames[1:]:
            if frame.direction != AMI_OUT:
                continue
            await asyncio.sleep(max(0.0, connected + frame.time - time.monotonic()))
            sent_at[frame.get("ActionID")] = time.monotonic()
            # After the PBX closed the connection, writing may fail; that is the expected outcome.
            with contextlib.suppress(ConnectionError):
                await connection.send(frame.headers)
        await stream.wait_until(lambda: stream.closed, trace.end_time + END_SLACK)
        await asyncio.sleep(QUIET)
    finally:
        reader.cancel()
        await connection.close()

    recorded = [
        frame for frame in trace.frames[1:] if frame.direction == AMI_IN and frame.lines != [CLOSED_MARK]
    ]
    result.received = stream.frames
    result.problems += compare_responses(recorded, stream.frames)
    recorded_events = [frame.event for frame in recorded if frame.event]
    received_events = [frame.event for frame in stream.frames if frame.event]
    if recorded_events != received_events:
        result.problems.append(f"events recorded {recorded_events}, simulator {received_events}")
    result.problems += _delay_problems(trace, stream.frames, sent_at)
    result.problems += _close_problems(trace, stream)
    return result


def _delay_problems(trace, received, sent_at):
    recorded_sent = {
        frame.get("ActionID"): frame.time for frame in trace.frames if frame.direction == AMI_OUT
    }
    problems = []
    for frame in trace.frames:
        if not (frame.direction == AMI_IN and frame.is_response):
            continue
        action_id = frame.get("ActionID")
        answer = next((f for f in received if f.is_response and f.get("ActionID") == action_id), None)
        if answer is None or action_id not in sent_at:
            continue
        want = frame.time - recorded_sent[action_id]
        got = answer.time - sent_at[action_id]
        if abs(got - want) > max(DELAY_TOLERANCE, DELAY_TOLERANCE_FRACTION * want):
            problems.append(f"ActionID {action_id}: answered after {got:.3f} s, recorded {want:.3f} s")
    return problems


def _close_problems(trace, stream):
    close_mark = next((frame for frame in trace.frames if frame.lines == [CLOSED_MARK]), None)
    if close_mark is None:
        return ["the simulator closed the connection; the recording did not"] if stream.closed else []
    if not stream.closed:
        return [
            f"the recording shows the PBX closing the connection at +{close_mark.time:.3f}; "
            "the simulator kept it open"
        ]
    if stream.frames and stream.closed_at - stream.frames[-1].time > DELAY_TOLERANCE:
        return [
            f"the simulator closed the connection {stream.closed_at - stream.frames[-1].time:.3f} s "
            "after its last frame; Asterisk closes right after it"
        ]
    return []
