"""The pbx process's loop, per AMI event: from the bytes read off the socket to the event queued
for the fold and handed to the apps' lanes (telephony.ami's protocol, ServerLink._on_event).

    make bench                                               # this tree, and bare panoramisk
    DEBUG=1 .venv/bin/python bench/ami_parse_bench.py --against HEAD~1   # and another revision

The stream is every event frame Asterisk 22 sent in the reference traces (tests/pbxsim/traces:
41 scenarios, read = all, no eventfilter), repeated to --events events and cut into 64 KiB reads as
a socket gives them. Each variant runs in a process of its own (a fresh interpreter, the
registered apps of this project), in interleaved rounds, timed with no profiler: wall time and
CPU time (process_time) of feeding the reads to the protocol, per event of the stream. "bare
panoramisk" is panoramisk's own parse and dispatch to one no-op "*" handler: the floor the
platform's path started from. --against REV runs REV's telephony package (git archive) the same
way, for a before/after. --profile prints cProfile's top functions of one round instead (never
timed). Asserts nothing but that every variant queued the same events for the fold.
"""

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
CHUNK = 65536
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CONTRACT_MANAGER_CONF = PROJECT_DIR / "telephony" / "asterisk" / "manager.conf.sample"


def stream(events: int, traces: list[str] | None = None, filtered=False) -> tuple[bytes, int, list[str]]:
    from pbxsim.ami import event_passes, load_manager_users
    from pbxsim.tracefile import AMI_IN, TRACES_DIR, parse_trace, trace_paths

    # What a PBX set up by the contract sends: its manager.conf's eventfilter applied.
    filters = load_manager_users(CONTRACT_MANAGER_CONF)["platform"].event_filters if filtered else ()
    frames, names = [], []
    for path in [TRACES_DIR / f"{name}.ami" for name in traces] if traces else trace_paths():
        for frame in parse_trace(path).frames:
            if (
                frame.direction == AMI_IN
                and frame.event
                and frame.event != "Shutdown"
                and event_passes(filters, frame.event, "\r\n".join(frame.lines))
            ):
                frames.append("\r\n".join(frame.lines).encode() + b"\r\n\r\n")
                names.append(frame.event)
    copies = -(-events // len(frames))
    return b"".join(frames) * copies, len(frames) * copies, names * copies


class Transport:
    """Nothing is written back: the bench reads only."""

    def write(self, data):
        pass

    def is_closing(self):
        return False


def connected_protocol(manager):
    """The protocol of a session as panoramisk's Manager.connection_made leaves it, without a login."""
    protocol = manager.config["protocol_factory"]()
    protocol.connection_made(Transport())
    manager.protocol = protocol
    protocol.queue = deque()
    protocol.factory = manager
    protocol.log = manager.log
    protocol.config = manager.config
    protocol.encoding = manager.encoding = manager.config["encoding"]
    protocol.responses = manager.responses = {}
    protocol.data_received(BANNER)
    return protocol


async def platform_path():
    """A ServerLink of the pbx process with the project's registered apps, fed by its AmiClient."""
    from telephony.ami import AmiClient, AmiEndpoint
    from telephony.models import PbxServer
    from telephony.platform import AppContext, Lane, registered_apps
    from telephony.process import PbxProcess, ServerLink
    from telephony.services.servers import Lease

    server = PbxServer(pk=1, name="bench", ami_host="127.0.0.1", ami_port=5038, ami_username="u")
    process = PbxProcess(apps=registered_apps())
    link = ServerLink(server, process, Lease(server_id=1, owner="bench", epoch=1))
    link.lease_renewed_at = time.monotonic() + 10**9  # no look at the lease in this bench
    for app in process.apps:
        link.contexts.append(AppContext(app, link, Lane(f"{app.name}@bench")))
    options = {"events_wanted": link.events_wanted} if hasattr(link, "events_wanted") else {}
    endpoint = AmiEndpoint("bench", "127.0.0.1", 1, "u", "p")
    link.client = AmiClient(endpoint, on_event=link._on_event, **options)
    protocol = connected_protocol(link.client.manager)

    def drain():
        folded = link.events.qsize()
        link.events = asyncio.Queue()
        lanes = 0
        for ctx in link.contexts:
            lanes += ctx.lane.queue.qsize()
            ctx.lane.queue = asyncio.Queue()
        return {"folded": folded, "to_lanes": lanes}

    return protocol, drain


async def bare_panoramisk_path():
    from panoramisk import Manager

    manager = Manager(loop=asyncio.get_running_loop(), host="127.0.0.1", port=1, events="on")
    seen = [0]

    def handler(manager, event):
        seen[0] += 1

    manager.register_event("*", handler)
    protocol = connected_protocol(manager)

    def drain():
        return {"handed": seen[0]}

    return protocol, drain


def one_round(variant: str, events: int, traces: list[str], filtered: bool, profile: bool) -> dict:
    data, count, _ = stream(events, traces, filtered)
    reads = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]

    async def run():
        protocol, drain = await (bare_panoramisk_path() if variant == "bare" else platform_path())
        profiler = cProfile.Profile() if profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for read in reads:
            protocol.data_received(read)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        result = {"events": count, "wall": wall, "cpu": cpu, **drain()}
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
            result["profile"] = out.getvalue()
        return result

    return asyncio.run(run())


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def child(args):
    setup_django()
    print(json.dumps(one_round(args.variant, args.events, args.trace, args.eventfilter, args.profile)))


def run_child(variant, events, traces, filtered, code_dir=None, profile=False):
    env = dict(os.environ)
    # A revision's telephony package, extracted beside nothing else, comes first on the path.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [code_dir, str(PROJECT_DIR), env.get("PYTHONPATH")]))
    command = [sys.executable, __file__, "--child", "--variant", variant, "--events", str(events)]
    for trace in traces or []:
        command += ["--trace", trace]
    if filtered:
        command.append("--eventfilter")
    if profile:
        command.append("--profile")
    output = subprocess.run(command, cwd=code_dir or PROJECT_DIR, env=env, check=True, capture_output=True)
    return json.loads(output.stdout.decode().strip().splitlines()[-1])


def extract(revision, into):
    archive = subprocess.run(
        ["git", "archive", revision, "telephony"], cwd=PROJECT_DIR, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=36_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trace", action="append", help="a trace's name (repeatable; default: all of them)")
    parser.add_argument("--against", help="a git revision whose telephony package runs the same stream")
    parser.add_argument(
        "--eventfilter",
        action="store_true",
        help="what the contract's manager.conf eventfilter lets through",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one round of each variant (untimed)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="platform", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.getcwd())
        child(args)
        return
    sys.path.insert(0, str(PROJECT_DIR))
    setup_django()
    from telephony.services.calls import FOLDED_EVENTS

    _, count, names = stream(args.events, args.trace, args.eventfilter)
    folded = sum(name in FOLDED_EVENTS for name in names)
    print(
        f"AMI events on the pbx process's loop: {count:,} events of the real Asterisk traces "
        f"({', '.join(args.trace) if args.trace else 'all of them'}"
        f"{', through the contract eventfilter' if args.eventfilter else ''}), "
        f"{1 - folded / count:.0%} of them never folded, in {CHUNK // 1024} KiB reads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        variants = {
            "bare panoramisk (parse + dispatch to a no-op)": ("bare", None),
            "this tree": ("platform", None),
        }
        if args.against:
            variants[f"{args.against}"] = ("platform", extract(args.against, tmp))
        if args.profile:
            for label, (variant, code_dir) in variants.items():
                print(f"  cProfile, {label} (by own time):")
                result = run_child(variant, args.events, args.trace, args.eventfilter, code_dir, profile=True)
                print(result["profile"])
            return
        results = {label: [] for label in variants}
        for _ in range(args.rounds):
            for label, (variant, code_dir) in variants.items():
                results[label].append(run_child(variant, args.events, args.trace, args.eventfilter, code_dir))
    queued = {
        label: (rounds[0].get("folded"), rounds[0].get("to_lanes"))
        for label, rounds in results.items()
        if "folded" in rounds[0]
    }
    for label, rounds in results.items():
        wall = statistics.median(r["wall"] for r in rounds)
        cpu = statistics.median(r["cpu"] for r in rounds)
        what = (
            f"{rounds[0]['folded']:,} queued for the fold, {rounds[0]['to_lanes']:,} to the apps' lanes"
            if "folded" in rounds[0]
            else f"{rounds[0]['handed']:,} handed on"
        )
        print(
            f"  {label}: {count / wall:,.0f} events/s, {cpu / count * 1e6:.1f} µs CPU per event "
            f"(median of {len(rounds)} interleaved rounds; {what})"
        )
    if len(set(queued.values())) > 1:
        raise SystemExit(f"the variants queued different events: {queued}")


if __name__ == "__main__":
    main()
