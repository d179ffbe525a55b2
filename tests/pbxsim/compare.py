"""Comparing what the simulator sent with what the real Asterisk sent, per channel.

Real Asterisk interleaves the events of different channels differently from
run to run, so events are grouped by channel and compared in order within
each channel; Cdr and OriginateResponse come from other threads in no fixed
order even within a channel, so they are compared as a multiset. Only the
headers the platform reads are compared, and only those the recorded event has.
"""

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

ORDERED_EVENTS = frozenset(
    {
        "Newchannel",
        "Newstate",
        "DialBegin",
        "DialEnd",
        "BridgeEnter",
        "BridgeLeave",
        "Hangup",
        "UserEvent",
        "MixMonitorStart",
        "MixMonitorStop",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "AGIExecEnd",
        "CoreShowChannel",
        "CoreShowChannelsComplete",
        "Status",
        "StatusComplete",
    }
)
UNORDERED_EVENTS = frozenset({"Cdr", "OriginateResponse"})
COMPARED_EVENTS = ORDERED_EVENTS | UNORDERED_EVENTS
COMPARED_HEADERS = (
    "ChannelState",
    "Context",
    "Exten",
    "Cause",
    "DialStatus",
    "Reason",
    "Response",
    "Disposition",
    "UserEvent",
    "Command",
    "Result",
    "Class",
)

# The 8 hex digits Asterisk numbers channels with (`Local/5551001@phones-00000087;1`) count up
# from whatever the PBX did before, so they differ between any two runs.
_CHANNEL_SEQUENCE = re.compile(r"-[0-9a-f]{8}(?=;\d|$|[\s,)\]])")
# Uniqueids Asterisk makes itself (EPOCH.SEQ) differ per run; the client-chosen ones do not.
_GENERATED_UNIQUEID = re.compile(r"^\d+\.\d+$")

NO_CHANNEL = "(no channel)"


def normalize(text):
    return _CHANNEL_SEQUENCE.sub("", text) if text else text


def is_generated_uniqueid(uniqueid):
    return bool(uniqueid and _GENERATED_UNIQUEID.match(uniqueid))


@dataclass(frozen=True, order=True)
class ChannelKey:
    """A channel as both runs can name it: its name without the sequence digits, plus the call it
    belongs to (the Uniqueid the client chose, else the Linkedid at creation), plus which of the
    channels with that name in that call it is (1 for the first)."""

    name: str
    call: str
    ordinal: int = 1

    def __str__(self):
        suffix = f" #{self.ordinal}" if self.ordinal > 1 else ""
        return f"{self.name} [{self.call}]{suffix}"


def _uniqueid_of(frame):
    if frame.get("Channel") is not None:
        return frame.get("Uniqueid") or frame.get("UniqueID")
    return frame.get("DestUniqueid")


class ChannelKeys:
    """Assigns ChannelKeys to the frames of one AMI stream.

    `learn` must see a channel's Newchannel before `key_for` is asked about its
    other events; for a whole recorded stream, learn every frame first (a Cdr
    can come before its channel's Newchannel).
    """

    def __init__(self):
        self._by_uniqueid = {}
        self._created = Counter()
        self.full_names = {}  # ChannelKey -> the channel's full name in this stream

    def learn(self, frame):
        if frame.event != "Newchannel":
            return
        uniqueid = frame.get("Uniqueid")
        if uniqueid in self._by_uniqueid:
            return
        name = normalize(frame.get("Channel", ""))
        call = f"linkedid {frame.get('Linkedid')}" if is_generated_uniqueid(uniqueid) else uniqueid
        self._created[(name, call)] += 1
        key = ChannelKey(name, call, self._created[(name, call)])
        self._by_uniqueid[uniqueid] = key
        self.full_names[key] = frame.get("Channel")

    def key_for(self, frame):
        uniqueid = _uniqueid_of(frame)
        if uniqueid in self._by_uniqueid:
            return self._by_uniqueid[uniqueid]
        # Dial events of an Originate have no caller, only the Dest* headers of the dialled channel.
        channel = frame.get("Channel") or frame.get("DestChannel")
        action_id = frame.get("ActionID")
        if channel is None:
            return ChannelKey(NO_CHANNEL, f"ActionID {action_id}" if action_id else "")
        if uniqueid and not is_generated_uniqueid(uniqueid):
            return ChannelKey(normalize(channel), uniqueid)
        linkedid = frame.get("Linkedid") or frame.get("DestLinkedid")
        if linkedid:
            return ChannelKey(normalize(channel), f"linkedid {linkedid}")
        return ChannelKey(normalize(channel), f"ActionID {action_id}" if action_id else "")


def keyed_events(frames):
    """The compared events of a whole stream, grouped: {key: ([ordered], [unordered])}."""
    keys = ChannelKeys()
    for frame in frames:
        keys.learn(frame)
    grouped = defaultdict(lambda: ([], []))
    for frame in frames:
        if frame.event in ORDERED_EVENTS:
            grouped[keys.key_for(frame)][0].append(frame)
        elif frame.event in UNORDERED_EVENTS:
            grouped[keys.key_for(frame)][1].append(frame)
    return grouped, keys


def event_matches(recorded, received):
    if recorded.event != received.event:
        return False
    return all(
        normalize(received.get(header)) == normalize(recorded.get(header))
        for header in COMPARED_HEADERS
        if recorded.get(header) is not None
    )


def render_event(frame, like=None):
    """`Name(Header=value, ...)` with the compared headers of `like` (the recorded counterpart)."""
    if frame is None:
        return "(none)"
    model = like if like is not None and like.event == frame.event else frame
    shown = []
    for header in COMPARED_HEADERS:
        if model.get(header) is None:
            continue
        value = frame.get(header)
        shown.append(f"{header}={normalize(value)}" if value is not None else f"{header} missing")
    return f"{frame.event}({', '.join(shown)})"


def side_by_side(title, recorded, received, first_difference):
    rows = max(len(recorded), len(received))
    left = [render_event(recorded[i]) if i < len(recorded) else "(none)" for i in range(rows)]
    right = [
        render_event(received[i], recorded[i] if i < len(recorded) else None)
        if i < len(received)
        else "(none)"
        for i in range(rows)
    ]
    width = max([len("recorded (Asterisk 22)"), *map(len, left)])
    lines = [title, f"       {'recorded (Asterisk 22)':<{width}}  simulator"]
    for i in range(rows):
        mark = ">>" if i == first_difference else "  "
        lines.append(f"  {mark}{i + 1:>3} {left[i]:<{width}}  {right[i]}")
    return "\n".join(lines)


def compare_ordered(key, recorded, received):
    for i in range(max(len(recorded), len(received))):
        if i >= len(recorded) or i >= len(received) or not event_matches(recorded[i], received[i]):
            title = f"{key}: events differ at #{i + 1}"
            return side_by_side(title, recorded, received, i)
    return None


def compare_unordered(key, recorded, received):
    unmatched = list(received)
    missing = []
    for frame in recorded:
        match = next((other for other in unmatched if event_matches(frame, other)), None)
        if match is None:
            missing.append(frame)
        else:
            unmatched.remove(match)
    if not missing and not unmatched:
        return None
    lines = [f"{key}: Cdr/OriginateResponse differ (compared as a set)"]
    lines += [f"    only recorded:  {render_event(frame)}" for frame in missing]
    lines += [f"    only simulator: {render_event(frame)}" for frame in unmatched]
    return "\n".join(lines)


def compare_channels(recorded_frames, received_frames):
    """One message per channel whose events differ, sorted by channel."""
    recorded, _ = keyed_events(recorded_frames)
    received, _ = keyed_events(received_frames)
    problems = []
    for key in sorted(set(recorded) | set(received)):
        rec_ordered, rec_unordered = recorded.get(key, ([], []))
        sim_ordered, sim_unordered = received.get(key, ([], []))
        for problem in (
            compare_ordered(key, rec_ordered, sim_ordered),
            compare_unordered(key, rec_unordered, sim_unordered),
        ):
            if problem:
                problems.append(problem)
    return problems


def responses_by_action_id(frames):
    responses = defaultdict(list)
    for frame in frames:
        if frame.is_response:
            responses[frame.get("ActionID")].append(frame)
    return responses


def compare_responses(recorded_frames, received_frames):
    """Response and Message of every action's response, matched by ActionID.

    Message is compared when the recorded response has one: Asterisk leaves it out
    of some (MixMonitor), and a simulator that adds one breaks no client.
    """
    recorded = responses_by_action_id(recorded_frames)
    received = responses_by_action_id(received_frames)
    problems = []
    for action_id in sorted(set(recorded) | set(received), key=str):
        rec, sim = recorded.get(action_id, []), received.get(action_id, [])
        if len(rec) != len(sim):
            problems.append(
                f"ActionID {action_id}: {len(rec)} response(s) recorded, {len(sim)} from the simulator"
                + "".join(f"\n    recorded:  {' | '.join(frame.lines)}" for frame in rec)
                + "".join(f"\n    simulator: {' | '.join(frame.lines)}" for frame in sim)
            )
            continue
        for rec_frame, sim_frame in zip(rec, sim, strict=True):
            for header in ("Response", "Message"):
                want = rec_frame.get(header)
                got = sim_frame.get(header)
                if want is not None and normalize(want) != normalize(got):
                    problems.append(f"ActionID {action_id}: {header} recorded {want!r}, simulator {got!r}")
    return problems


def compared_event_counts(frames, keys):
    """How many compared events each channel has in `frames` (keys must have learnt them)."""
    return Counter(keys.key_for(frame) for frame in frames if frame.event in COMPARED_EVENTS)
