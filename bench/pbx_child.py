"""The pbx process of telephony_bench.py: the real PbxProcess, with a tiny app, driven over stdin.

    DATABASE_URL=... python bench/pbx_child.py SERVER_ID [FOLD_WORKERS]

It runs one PbxProcess for the server, as `manage.py pbx [--fold-workers N]` does, plus a `bench` app
that sees every call's typed events. Each line on stdin is a JSON command; each
answer is one stdout line `BENCH <json>`:

- {"cmd": "originate", "prefix": P, "calls": N}: N sequential ctx.pbx.originate(wait=True)
  run on the process's loop; answers {"times": [seconds, ...]}.
- {"cmd": "replay", "rate": R, "seconds": S}: R calls a second, for S seconds, of the
  recorded click2call-completed call (fresh uniqueids) put straight into the server link's
  fold queue, each stamped `_received` when put; answers the latencies from that stamp
  to the app's on_call_event (CallStarted after its Newchannel, CallEnded after its Hangup).
- {"cmd": "stream", "path": F}: the AMI bytes in file F (a replayed real Asterisk stream) fed to
  the live panoramisk connection's protocol, as its socket reads would, in 64 KiB chunks, waiting
  while the link has paused reading; answers when every event is folded and its typed events
  handed to the apps: {"events", "fed_seconds", "drained_seconds", fold figures}.
- {"cmd": "profile", "on": true|false}: cProfile of the loop thread and the fold thread;
  off answers both profiles' top entries and the time call_events_fold took.
- {"cmd": "stop"}.
"""

import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from pbxsim.tracefile import ami_events  # noqa: E402
from telephony.models import PbxServer  # noqa: E402
from telephony.platform import PbxApp  # noqa: E402
from telephony.process import PbxProcess  # noqa: E402
from telephony.services import calls  # noqa: E402

# The keys that name a leg, a call or a bridge: each replayed copy gets its own.
RENAMED = ("Uniqueid", "DestUniqueid", "UniqueID", "Linkedid", "DestLinkedid", "BridgeUniqueid")
# The recorded call lasts about 6 s; replayed, its events keep their order and spacing, 6x faster.
REPLAY_SPEEDUP = 6.0
PROFILE_TOP = 15
STREAM_CHUNK = 65536


class BenchApp(PbxApp):
    name = "bench"
    all_calls = True

    def __init__(self):
        self.ctx = None
        self.ready = asyncio.Event()
        self.sent: dict[tuple[str, str], float] = {}
        self.latencies: list[float] = []

    async def started(self, ctx):
        self.ctx = ctx
        self.ready.set()

    async def on_call_event(self, ctx, event):
        sent = self.sent.pop((event.record.uniqueid, type(event).__name__), None)
        if sent is not None:
            self.latencies.append(time.time() - sent)


class FoldTimer:
    """Wraps calls.call_events_fold (the link looks it up on each batch) to time the fold thread's work."""

    def __init__(self):
        self.fold = calls.call_events_fold
        self.seconds = 0.0
        self.batches = 0
        self.events = 0
        calls.call_events_fold = self

    def __call__(self, **kwargs):
        start = time.perf_counter()
        try:
            return self.fold(**kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.batches += 1
            self.events += len(kwargs["events"])

    def reset(self):
        self.seconds, self.batches, self.events = 0.0, 0, 0


class Child:
    def __init__(self, server, fold_workers=0):
        self.server = server
        self.app = BenchApp()
        # With fold workers the fold runs in them: the fold figures below then count nothing.
        self.process = PbxProcess(apps=[self.app], fold_workers=fold_workers)
        self.timer = FoldTimer()
        self.profiles = None
        self.call = [
            e for e in ami_events("click2call-completed", epoch=0.0) if e["Event"] in calls.FOLDED_EVENTS
        ]

    @property
    def link(self):
        return self.process.links[self.server.pk]

    async def run(self):
        running = asyncio.create_task(self.process.run([self.server], install_signals=False))
        await asyncio.wait_for(self.app.ready.wait(), 30)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
        answer({"ready": True})
        while line := await reader.readline():
            command = json.loads(line)
            if command["cmd"] == "stop":
                break
            answer(await getattr(self, command.pop("cmd"))(**command))
        self.process.stopping.set()
        await running

    async def originate(self, *, prefix, calls):
        times = []
        for n in range(calls):
            start = time.perf_counter()
            outcome = await self.app.ctx.pbx.originate(
                wait=True, channel_id=f"{prefix}{n}", number="5551012", context="platform-hold"
            )
            times.append(time.perf_counter() - start)
            if outcome.outcome != "answered":
                raise RuntimeError(f"handle originate: {outcome}")
        return {"times": times}

    async def replay(self, *, rate, seconds):
        schedule = []
        for n in range(int(rate * seconds)):
            for event in self.call:
                copy = {k: f"r{rate}-{n}-{v}" if k in RENAMED else v for k, v in event.items()}
                schedule.append((n / rate + event["_received"] / REPLAY_SPEEDUP, copy))
        schedule.sort(key=lambda item: item[0])
        self.app.latencies.clear()
        self.timer.reset()
        queue = self.link.events
        start = time.perf_counter()
        due = 0
        while due < len(schedule):
            now = time.perf_counter() - start
            while due < len(schedule) and schedule[due][0] <= now:
                event = schedule[due][1]
                event["_received"] = time.time()
                kind = {"Newchannel": "CallStarted", "Hangup": "CallEnded"}.get(event["Event"])
                if kind:
                    self.app.sent.setdefault((event["Uniqueid"], kind), event["_received"])
                queue.put_nowait(event)
                due += 1
            await asyncio.sleep(0.001)
        fed = time.perf_counter() - start
        await queue.join()
        await self.app.ctx.lane.queue.join()
        drained = time.perf_counter() - start
        # Newchannels of Local ;2 halves make no record, hence no typed event: not waited for.
        self.app.sent.clear()
        return {
            "latencies": self.app.latencies[:],
            "events": len(schedule),
            "fed_seconds": fed,
            "drained_seconds": drained,
            **self._fold_figures(drained),
        }

    async def stream(self, *, path):
        data = Path(path).read_bytes().decode()
        events = data.count("\r\n\r\n")
        link = self.link
        # panoramisk has no public way in; its protocol is what the socket's reads are handed to.
        protocol = link.client.manager.protocol
        self.timer.reset()
        start = time.perf_counter()
        for offset in range(0, len(data), STREAM_CHUNK):
            while link.paused:
                await asyncio.sleep(0.001)
            protocol.data_received(data[offset : offset + STREAM_CHUNK].encode())
            await asyncio.sleep(0)
        fed = time.perf_counter() - start
        await link.events.join()
        await self.app.ctx.lane.queue.join()
        drained = time.perf_counter() - start
        return {
            "events": events,
            "fed_seconds": fed,
            "drained_seconds": drained,
            **self._fold_figures(drained),
        }

    def _fold_figures(self, window):
        return {
            "fold_seconds": self.timer.seconds,
            "fold_busy": self.timer.seconds / window if window else 0.0,
            "fold_batches": self.timer.batches,
            "folded_events": self.timer.events,
        }

    async def profile(self, *, on):
        loop = asyncio.get_running_loop()
        if on:
            self.profiles = (cProfile.Profile(), cProfile.Profile(), time.perf_counter())
            self.timer.reset()
            await loop.run_in_executor(self.link.fold_thread, self.profiles[1].enable)
            self.profiles[0].enable()
            return {}
        loop_profile, fold_profile, since = self.profiles
        loop_profile.disable()
        await loop.run_in_executor(self.link.fold_thread, fold_profile.disable)
        return {
            "loop": top(loop_profile),
            "fold": top(fold_profile),
            **self._fold_figures(time.perf_counter() - since),
        }


def top(profile):
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(PROFILE_TOP)
    lines = out.getvalue().splitlines()
    # Keep the column header and the rows; pstats prints a preamble before them.
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(line for line in lines[start:] if line.strip())


def answer(payload):
    sys.stdout.write("BENCH " + json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    server = PbxServer.objects.get(pk=int(sys.argv[1]))
    asyncio.run(Child(server, int(sys.argv[2]) if len(sys.argv) > 2 else 0).run())
