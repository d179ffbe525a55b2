"""How fast the PBX simulator answers, beside the figures measured on a real Asterisk 22.

    make bench
    DEBUG=1 .venv/bin/python bench/pbxsim_bench.py [--calls 300] [--burst 200] [--concurrent 200] [--held 500]

Starts `manage.py pbxsim` on a free loopback port with a small dialplan of its
own and prints figures; it asserts nothing, because times depend on the machine.
Every wait is bounded, so a simulator that stops answering ends the run with
a message instead of hanging it.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

# `make bench` runs each bench/*_bench.py as a script, so the project root is not on the path yet.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbxsim.amiwire import ConnectionClosed, encode_action, open_logged_in
from pbxsim.harness import running_pbxsim

# Measured on Asterisk 22.10.1, 2 cores, loopback (tests/pbxsim/traces/README.md).
ASTERISK_ROUND_TRIP = "median 1.59-1.68 ms, p99 2.27-2.63 ms"
ASTERISK_BURST = "about 900-970 OriginateResponses/s"

# `answer` picks up at once and hangs up, `hold` picks up and stays, `chatter` runs through
# twenty priorities (one Newexten event each) before it hangs up. The originated half goes to
# [bench-done] (hang up) or [bench-hold] (stay until the other half ends the call).
DIALPLAN = """\
[bench]
exten => answer,1,Answer()
 same => n,Hangup()
exten => hold,1,Answer()
 same => n,Wait(3600)
 same => n,Hangup()
exten => chatter,1,Answer()
{chatter}
 same => n,Wait(0.5)
 same => n,Hangup()

[bench-done]
exten => s,1,Hangup()

[bench-hold]
exten => s,1,Wait(3600)
 same => n,Hangup()
""".format(chatter="\n".join(f" same => n,NoOp(step {step})" for step in range(20)))

RESPONSE_TIMEOUT = 10.0


def originate(action_id, exten, context):
    return [
        ("Action", "Originate"),
        ("Channel", f"Local/{exten}@bench"),
        ("Async", "true"),
        ("ChannelId", f"{action_id}-1"),
        ("OtherChannelId", f"{action_id}-2"),
        ("Context", context),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", "30000"),
        ("ActionID", action_id),
    ]


class Listener:
    """Reads one AMI session in the background: counts events and resolves OriginateResponse waiters."""

    def __init__(self, connection):
        self.connection = connection
        self.waiters = {}
        self.events = 0
        self.hangups = 0
        self.last_event_at = time.perf_counter()
        self.failures = []
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            try:
                frame = await self.connection.read_frame(timeout=None)
            except ConnectionClosed:
                return
            if frame.event is None:
                continue
            self.events += 1
            self.last_event_at = time.perf_counter()
            if frame.event == "Hangup":
                self.hangups += 1
            elif frame.event == "OriginateResponse":
                if frame.get("Response") != "Success":
                    self.failures.append(frame.lines)
                waiter = self.waiters.pop(frame.get("ActionID"), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(time.perf_counter())

    def expect(self, action_id):
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[action_id] = waiter
        return waiter

    async def wait_hangups(self, count, timeout):
        deadline = time.perf_counter() + timeout
        while self.hangups < count and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        return self.hangups >= count

    async def close(self):
        self.task.cancel()
        await self.connection.close()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def round_trips(sim, calls):
    listener = Listener(await open_logged_in(sim.host, sim.port))
    times = []
    for number in range(calls):
        action_id = f"rt{number}"
        answered = listener.expect(action_id)
        sent = time.perf_counter()
        await listener.connection.send(originate(action_id, "answer", "bench-done"))
        times.append((await asyncio.wait_for(answered, RESPONSE_TIMEOUT)) - sent)
    await listener.wait_hangups(2 * calls, RESPONSE_TIMEOUT)
    await listener.close()
    millis = [value * 1000 for value in times]
    print(
        f"Originate round trip, {calls} sequential: median {statistics.median(millis):.2f} ms, "
        f"p99 {percentile(millis, 0.99):.2f} ms, max {max(millis):.2f} ms"
        f"   (Asterisk: {ASTERISK_ROUND_TRIP})"
    )
    report_failures("round trip", listener)


async def burst(sim, calls):
    listener = Listener(await open_logged_in(sim.host, sim.port))
    waiters = [listener.expect(f"burst{number}") for number in range(calls)]
    payload = b"".join(
        encode_action(originate(f"burst{number}", "answer", "bench-done")) for number in range(calls)
    )
    sent = time.perf_counter()
    await listener.connection.send_raw(payload)
    done = await asyncio.wait_for(asyncio.gather(*waiters), RESPONSE_TIMEOUT)
    elapsed = max(done) - sent
    await listener.wait_hangups(2 * calls, RESPONSE_TIMEOUT)
    await listener.close()
    print(
        f"Burst of {calls} Originates: {calls / elapsed:.0f} OriginateResponses/s "
        f"(last after {elapsed * 1000:.0f} ms)   (Asterisk: {ASTERISK_BURST})"
    )
    report_failures("burst", listener)


async def event_rate(sim, calls):
    listener = Listener(await open_logged_in(sim.host, sim.port))
    payload = b"".join(
        encode_action(originate(f"ev{number}", "chatter", "bench-hold")) for number in range(calls)
    )
    start = time.perf_counter()
    await listener.connection.send_raw(payload)
    finished = await listener.wait_hangups(2 * calls, 60)
    elapsed = listener.last_event_at - start
    await listener.close()
    print(
        f"{calls} concurrent calls: {listener.events / elapsed:.0f} AMI events/s received "
        f"({listener.events} events in {elapsed:.2f} s{'' if finished else ', NOT all calls ended'})"
    )
    report_failures("events", listener)


async def held_channels(sim, calls):
    listener = Listener(await open_logged_in(sim.host, sim.port))
    before = rss_kib(sim.pid)
    waiters = [listener.expect(f"hold{number}") for number in range(calls)]
    await listener.connection.send_raw(
        b"".join(encode_action(originate(f"hold{number}", "hold", "bench-hold")) for number in range(calls))
    )
    await asyncio.wait_for(asyncio.gather(*waiters), 60)
    listed = await count_channels(sim)
    after = rss_kib(sim.pid)
    await listener.close()
    print(
        f"{2 * calls} live channels ({listed} listed by CoreShowChannels): RSS {after / 1024:.1f} MiB "
        f"(before the calls {before / 1024:.1f} MiB, {(after - before) / (2 * calls):.1f} KiB per channel)"
    )
    report_failures("held", listener)


async def count_channels(sim):
    """CoreShowChannels through a second session, so the listener's counters stay as they are."""
    connection = await open_logged_in(sim.host, sim.port)
    await connection.send([("Action", "CoreShowChannels"), ("ActionID", "count")])
    listed = 0
    while True:
        frame = await connection.wait_for(lambda frame: frame.get("ActionID") == "count", RESPONSE_TIMEOUT)
        if frame.event == "CoreShowChannel":
            listed += 1
        elif frame.event == "CoreShowChannelsComplete":
            break
    await connection.close()
    return listed


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def report_failures(phase, listener):
    if listener.failures:
        print(f"  {phase}: {len(listener.failures)} Originate(s) failed, first: {listener.failures[0]}")


async def main(args):
    with tempfile.TemporaryDirectory(prefix="pbxsim-bench-") as tmp:
        dialplan = Path(tmp) / "bench.conf"
        dialplan.write_text(DIALPLAN)
        with running_pbxsim(dialplans=[dialplan], time_scale=1) as sim:
            print(f"pbxsim pid {sim.pid} on {sim.host}:{sim.port}")
            await round_trips(sim, args.calls)
            await burst(sim, args.burst)
            await event_rate(sim, args.concurrent)
            await held_channels(sim, args.held)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="sequential Originates for the round trip")
    parser.add_argument("--burst", type=int, default=200, help="Originates sent back to back")
    parser.add_argument("--concurrent", type=int, default=200, help="calls at once for the event rate")
    parser.add_argument("--held", type=int, default=500, help="Local pairs held up for the memory figure")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
