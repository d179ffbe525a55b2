"""Folding spread over processes: `manage.py pbx --fold-workers N`.

Without the flag the pbx process folds a server's events in a thread of its own, as it always did.
With it, the process that holds the server's lease still reads and parses the AMI session, gathers
the events into batches, delivers raw events and Originate outcomes, and runs the apps' lanes and
hooks (which act on its AMI session); each batch's events are handed to N child processes in
shares (`FoldDispatch`), and the typed events each share's commit returns are published to the
apps' lanes by the parent, share by share as each commits.

What must be folded together goes into one group, in the batch's order (`event_groups`): the
events of one leg (Uniqueid), of one call (Linkedid: a leg's origin, found by it), a Dial's two
legs, a Local pair's two halves (`_share` finds one by the other's name), and every leg entering one
bridge (so each CallBridged is seen by the fold of the second entry). A leg whose Linkedid changes
(BridgeEnter gives it the bridge's oldest) joins both calls' group in that batch. A group goes to the
worker that still has one of its keys in hand (a share queued or being folded), after that share;
a group that two workers have keys of waits until both are done; any other group goes to the least
loaded worker, where what a fold reads of the call's earlier events is in the database already.
So a call is in one worker's hands at a time, its events folded and its typed events published in
order. What two workers may still both touch (a leg of an earlier bridge that a BridgeEnter into it
locks) is serialised by the rows' locks (`select_for_update`), as two pbx processes' writes would be.

Every share is folded with the server's lease and checks it in its own transaction
(`call_events_fold(lease=...)`): a worker writes nothing once another process took the server over,
whatever the parent still had queued. A worker that dies (killed, out of memory) is started again
and its share folded again; a share that kills a fresh worker too is folded event by event, and an
event that still kills one is logged and skipped, like an event the database refuses. Folding is
idempotent, so a share folded twice writes nothing twice; but a share whose worker died after its
commit and before its answer caused typed events that no app is told (its webhook deliveries were
written in the same commit): the apps' `started` rebuilds from the database, as after a crash of
the whole process.
"""

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
from concurrent.futures.process import BrokenProcessPool

from django.conf import settings

from telephony.events import CallEvent
from telephony.fold_child import fold_share, worker_pid, worker_start, worker_stop
from telephony.services.servers import Lease

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0

# The headers that name a leg or a call (a call's Linkedid is its first leg's Uniqueid).
_ID_HEADERS = ("Uniqueid", "DestUniqueid", "UniqueID", "Linkedid", "DestLinkedid")


class FoldWorkerDied(Exception):
    """The child process folding a share died before it answered; a fresh one is started."""


def event_groups(events: list[dict]) -> list[tuple[list[str], list[dict]]]:
    """The batch's groups of events that must be folded together (see the module's docstring),
    each with the keys it touches (legs and calls "i...", bridges "b...", Local pairs "l..."), its
    events in the batch's order; groups in the order they first appear."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    firsts = []
    for event in events:
        keys = [f"i{event[h]}" for h in _ID_HEADERS if event.get(h)]
        if event.get("BridgeUniqueid"):
            keys.append(f"b{event['BridgeUniqueid']}")
        for header in ("Channel", "DestChannel"):
            channel = event.get(header, "")
            if channel.startswith("Local/") and channel[-2:] in (";1", ";2"):
                keys.append(f"l{channel[:-2]}")
        if not keys:
            firsts.append(None)  # about no leg: the fold skips it; a group of its own
            continue
        first = None
        for key in keys:
            top = root(key) if key in parent else parent.setdefault(key, key)
            if first is None:
                first = top
            elif top != first:
                parent[top] = first
        firsts.append(keys[0])
    groups: dict = {}
    for number, (event, key) in enumerate(zip(events, firsts, strict=True)):
        group = groups.setdefault(root(key) if key is not None else number, ([], []))
        group[1].append(event)
    members: dict[str, list[str]] = {}
    for key in parent:
        members.setdefault(root(key), []).append(key)
    return [(members.get(top, []), grouped) for top, (_, grouped) in groups.items()]


class FoldDispatch:
    """Hands each batch's groups of events to the fold workers, without waiting for the batches
    before to commit. Each worker folds its shares one after the other and publishes their typed
    events as each commits; a group touching a leg, call, bridge or Local pair that a worker still
    has in hand goes to that worker, after what it has; a group touching what two workers have in
    hand waits until both are done. So a call's events are folded, and its typed events published,
    in order, on one worker at a time. At most MAX_QUEUED shares wait per worker: past that the batch
    waits, the events pile up in the link's queue and its high-water mark pauses the AMI reads."""

    MAX_QUEUED = 2

    def __init__(self, workers: list["FoldWorker"], *, fold, folded):
        self.workers = workers
        self.fold = fold  # async fold(events, worker): folded and published, or logged
        self.folded = folded  # folded(events): the link's accounting once a share is done
        self.queues = [asyncio.Queue() for _ in workers]
        self.pending = [0] * len(workers)  # shares queued or being folded, per worker
        self.load = [0] * len(workers)  # their events
        self.key_at: dict[str, tuple[int, int]] = {}  # key -> (worker, share) while in hand
        self.shares = 0
        self.progress = asyncio.Event()
        self.tasks = [asyncio.create_task(self._run(number)) for number in range(len(workers))]

    async def put(self, batch: list[dict]):
        shares: list[list[dict]] = [[] for _ in self.workers]
        keys: list[list[str]] = [[] for _ in self.workers]
        for group_keys, grouped in event_groups(batch):
            busy = {self.key_at[key][0] for key in group_keys if key in self.key_at}
            if len(busy) > 1:
                # Two calls in two workers' hands meet (a transfer, a bridge): both done first.
                await self._send(shares, keys)
                shares, keys = [[] for _ in self.workers], [[] for _ in self.workers]
                await self.idle()
                busy = set()
            if busy:
                number = busy.pop()
            else:
                number = min(range(len(self.workers)), key=lambda n: self.load[n] + len(shares[n]))
            shares[number].extend(grouped)
            keys[number].extend(group_keys)
        await self._send(shares, keys)

    async def _send(self, shares, keys):
        for number, share in enumerate(shares):
            if not share:
                continue
            while self.pending[number] >= self.MAX_QUEUED:
                await self._progress()
            self.shares += 1
            for key in keys[number]:
                self.key_at[key] = (number, self.shares)
            self.pending[number] += 1
            self.load[number] += len(share)
            self.queues[number].put_nowait((self.shares, share, keys[number]))

    async def _progress(self):
        self.progress.clear()
        await self.progress.wait()

    async def idle(self):
        """Until no share is queued or being folded."""
        while any(self.pending):
            await self._progress()

    async def _run(self, number: int):
        worker, queue = self.workers[number], self.queues[number]
        while True:
            share_id, share, keys = await queue.get()
            try:
                await self.fold(share, worker)
            finally:
                for key in keys:
                    if self.key_at.get(key) == (number, share_id):
                        del self.key_at[key]
                self.pending[number] -= 1
                self.load[number] -= len(share)
                self.folded(share)
                self.progress.set()


class FoldWorker:
    """One child process folding the shares given to it, one at a time."""

    def __init__(self, name: str):
        self.name = name
        self.pid: int | None = None
        self.deaths = 0
        self.events_folded = 0
        self.pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        # Spawned, not forked: a fork of the parent would share its database sockets and threads.
        return concurrent.futures.ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_start,
            initargs=(settings.DATABASES, settings.PBX_LEASE_SECONDS),
        )

    async def start(self):
        """Start the child now (Django's setup takes a second), not at the first batch. One that
        fails to start is started again by the first share given to it."""
        try:
            self.pid = await self._run(worker_pid)
        except FoldWorkerDied as exc:
            log.error("%s", exc)

    async def _run(self, function, *args):
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)
        except BrokenProcessPool:
            self.deaths += 1
            dead = self.pid
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
            self.pid = None
            raise FoldWorkerDied(f"fold worker {self.name} (pid {dead}) died; started again") from None

    async def fold(self, *, server_id: int, events: list[dict], lease: Lease) -> list[CallEvent]:
        result = await self._run(fold_share, server_id, events, lease)
        self.events_folded += len(events)
        if self.pid is None:
            self.pid = await self._run(worker_pid)
        return result

    def close(self):
        """Stop the child (what it was given is folded by then: the link stops once its queue is)."""
        # Unless dead, or stuck in the database: its session then ends with it.
        with contextlib.suppress(BrokenProcessPool, concurrent.futures.TimeoutError):
            self.pool.submit(worker_stop).result(STOP_TIMEOUT)
        self.pool.shutdown(wait=True, cancel_futures=True)
