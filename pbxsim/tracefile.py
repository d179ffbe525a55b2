"""Reading the reference traces recorded on a real Asterisk (tests/pbxsim/traces/README.md: the format).

A trace is a list of frames, each with a direction, the time in seconds since
the scenario started, and its lines verbatim. AMI frames also expose their
headers; FastAGI frames are plain lines.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

TRACES_DIR = Path(__file__).resolve().parents[1] / "tests" / "pbxsim" / "traces"

# Direction markers, as written in the trace files.
AMI_OUT = ">>>"  # an action the platform sent
AMI_IN = "<<<"  # a frame Asterisk sent (response, event, banner line)
AGI_OUT = "agi>>>"  # a command the FastAGI server sent
AGI_IN = "agi<<<"  # what Asterisk sent on a FastAGI connection

_MARKER = re.compile(r"^(agi>>>|agi<<<|>>>|<<<) \+(\d+(?:\.\d+)?)$")

# The FastAGI address in the app traces (tests/pbxsim/apps): the pbx process's port, not 4573.
RECORDED_AGI_ADDRESS_ALIASES = re.compile(r"127\.0\.0\.1:14573")

# The recorder writes this pseudo frame when the PBX closed the AMI connection; it is not on the wire.
CLOSED_MARK = "(connection closed by the PBX)"


def parse_headers(lines):
    """AMI `Name: value` lines to (name, value) pairs, keeping order and repeats.

    A value keeps its own spacing except the one space after the colon, so an empty
    `AccountCode: ` stays an empty string. A line without a colon becomes (line, "").
    """
    pairs = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            pairs.append((line, ""))
            continue
        pairs.append((name, value[1:] if value.startswith(" ") else value))
    return pairs


@dataclass
class Frame:
    direction: str
    time: float
    lines: list[str]
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name, default=None):
        """The first header called `name` (AMI header names are case-insensitive)."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    @property
    def event(self):
        return self.get("Event")

    @property
    def is_response(self):
        return self.get("Response") is not None and self.event is None


@dataclass
class Trace:
    name: str
    what: str
    frames: list[Frame]

    @property
    def has_own_login(self):
        """Login traces start with the banner; the others start after a successful Login."""
        return bool(self.frames) and self.frames[0].direction == AMI_IN

    @property
    def end_time(self):
        return max((frame.time for frame in self.frames), default=0.0)


def parse_trace(path):
    path = Path(path)
    name, what = path.stem, ""
    frames = []
    current = None
    for raw in path.read_text(encoding="utf-8").split("\n"):
        line = raw.rstrip("\r")
        marker = _MARKER.match(line)
        if marker:
            current = Frame(direction=marker.group(1), time=float(marker.group(2)), lines=[])
            frames.append(current)
        elif current is None:
            if line.startswith("# scenario:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("# what:"):
                what = line.split(":", 1)[1].strip()
        else:
            current.lines.append(line)
    for frame in frames:
        # Each frame ends with one blank line in the file; frames have no blank lines inside.
        while frame.lines and frame.lines[-1] == "":
            frame.lines.pop()
        if frame.direction in (AMI_IN, AMI_OUT):
            frame.headers = parse_headers(frame.lines)
    return Trace(name=name, what=what, frames=frames)


def trace_paths():
    return sorted(TRACES_DIR.glob("*.ami"))


def ami_events(name, *, epoch):
    """The AMI events Asterisk sent in trace `name`, as dicts stamped `_received` = epoch + their time."""
    events = []
    for frame in parse_trace(TRACES_DIR / f"{name}.ami").frames:
        if frame.direction == AMI_IN and frame.event:
            event = dict(frame.headers)
            event["_received"] = epoch + frame.time
            events.append(event)
    return events
