"""The comparison itself, without a simulator: a harness that passes everything proves nothing."""

import copy
import re

import pytest

from pbxsim.tracefile import AMI_IN, parse_headers, parse_trace, trace_paths
from tests.pbxsim.compare import compare_channels, compare_responses
from tests.pbxsim.fastagi import agi_line_matches, agi_sessions

TRACES = {path.stem: path for path in trace_paths()}


def received_frames(trace):
    return [frame for frame in trace.frames if frame.direction == AMI_IN]


def renumbered(frames, offset=0x1000):
    """The same frames as another run would number its channels."""
    bumped = []
    for frame in copy.deepcopy(frames):
        frame.lines = [
            re.sub(r"-([0-9a-f]{8})(?=;\d)", lambda m: f"-{int(m.group(1), 16) + offset:08x}", line)
            for line in frame.lines
        ]
        frame.headers = parse_headers(frame.lines)
        bumped.append(frame)
    return bumped


@pytest.mark.parametrize("name", sorted(TRACES))
def test_a_trace_matches_itself_renumbered(name):
    frames = received_frames(parse_trace(TRACES[name]))
    assert compare_channels(frames, renumbered(frames)) == []
    assert compare_responses(frames, renumbered(frames)) == []


def test_other_orders_across_channels_match():
    frames = received_frames(parse_trace(TRACES["originate-busy"]))
    # Keep each channel's order but put the ;2 events first, as another run may.
    second_half = [frame for frame in frames if ";2" in (frame.get("Channel") or "")]
    others = [frame for frame in frames if frame not in second_half]
    assert compare_channels(frames, second_half + list(reversed(others))) != []
    assert compare_channels(frames, second_half + others) == []


def test_a_wrong_cause_names_the_channel_and_the_event():
    frames = received_frames(parse_trace(TRACES["originate-busy"]))
    changed = copy.deepcopy(frames)
    for frame in changed:
        if frame.event == "Hangup" and frame.get("Channel").endswith(";2"):
            frame.headers = [(name, "16" if name == "Cause" else value) for name, value in frame.headers]
    problems = compare_channels(frames, changed)
    assert len(problems) == 1
    assert problems[0].startswith("Local/5551002@phones;2 [call-1-2]: events differ at #")
    assert "Cause=17" in problems[0] and "Cause=16" in problems[0]


def test_a_missing_cdr_is_reported():
    frames = received_frames(parse_trace(TRACES["originate-answer"]))
    without_cdr = [frame for frame in frames if frame.event != "Cdr" or frame.get("Channel").endswith(";2")]
    problems = compare_channels(frames, without_cdr)
    assert len(problems) == 1
    assert "only recorded:  Cdr(Disposition=ANSWERED)" in problems[0]


def test_generated_uniqueids_are_keyed_by_linkedid():
    frames = received_frames(parse_trace(TRACES["click2call-completed"]))
    other_run = renumbered(frames)
    for frame in other_run:
        frame.headers = [
            (name, re.sub(r"^\d+\.(\d+)$", r"1800000000.\1", value)) for name, value in frame.headers
        ]
    assert compare_channels(frames, other_run) == []


def test_agi_relaxations():
    stream = 'STREAM FILE beep ""'
    assert agi_line_matches("200 result=0 endpos=3404", "200 result=0 endpos=3400", stream, 1)
    assert not agi_line_matches("200 result=0 endpos=3404", "200 result=0 endpos=6000", stream, 1)
    assert not agi_line_matches("200 result=0 endpos=3404", "200 result=0", stream, 20)
    assert agi_line_matches("200 result=1 (9)", "200 result=1 (10)", "GET VARIABLE ANSWEREDTIME", 1)
    assert not agi_line_matches("200 result=1 (9)", "200 result=1 (11)", "GET VARIABLE ANSWEREDTIME", 1)
    # At time scale 20, 50 ms the machine runs late are a whole simulated second.
    assert agi_line_matches("200 result=1 (9)", "200 result=1 (11)", "GET VARIABLE ANSWEREDTIME", 20)
    assert not agi_line_matches("200 result=1 (1234)", "200 result=1 (1235)", "GET VARIABLE CARD_ID", 20)
    assert agi_line_matches(
        "200 result=1 (5550000-Local/5551006@phones-00000092;1)",
        "200 result=1 (5550000-Local/5551006@phones-00000003;1)",
        'GET FULL VARIABLE "${CALLERID(num)}-${CHANNEL}"',
        20,
    )


def test_agi_sessions_split_at_each_agi_block():
    sessions = agi_sessions(parse_trace(TRACES["agi-pin-entry"]))
    assert len(sessions) == 1
    assert sessions[0][0].lines[0] == "agi_network: yes"
    assert sessions[0][-1].lines == ["HANGUP"]
