"""Folding spread over processes: `manage.py pbx --fold-workers N`.

Without the flag the pbx process folds a server's events in a thread of its own, as it always did.
With it, the process that holds the server's lease still reads and parses the AMI session, gathers
the events into batches, delivers raw events and Originate outcomes, and runs the apps' lanes and
hooks (which act on its AMI session); each batch is split into N shares, folded at once by N child
processes, and the typed events each share's commit returns are published to the apps' lanes by the
parent, share by share as each commits.

What must be folded together goes into one share, in the batch's order: the events of one leg
(Uniqueid), of one call (Linkedid: a leg's origin, found by it), a Dial's two legs, a Local
pair's two halves (`_share` finds one by the other's name), and every leg entering one bridge
(so each CallBridged is seen by the share that folds the second entry). A leg whose Linkedid
changes (BridgeEnter gives it the bridge's oldest) joins both calls' share in that batch. The
next batch is split only once every share of this one has committed: what a fold reads of
earlier batches is in the database, so a call's events are folded, and its typed events published,
in order, whichever share it falls into from one batch to the next. What two shares may still both
touch (a leg of an earlier bridge, locked by the other share's BridgeEnter into it) is serialised
by the rows' locks (`select_for_update`), as two pbx processes' writes would be.

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


def event_shares(events: list[dict], count: int) -> list[list[dict]]:
    """Split a batch into `count` shares, each in the batch's order, keeping together the events
    that must be folded together (see the module's docstring); the groups are spread so the shares
    are about as long."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    groups = []
    for event in events:
        keys = [f"i{event[h]}" for h in _ID_HEADERS if event.get(h)]
        if event.get("BridgeUniqueid"):
            keys.append(f"b{event['BridgeUniqueid']}")
        for header in ("Channel", "DestChannel"):
            channel = event.get(header, "")
            if channel.startswith("Local/") and channel[-2:] in (";1", ";2"):
                keys.append(f"l{channel[:-2]}")
        if not keys:
            groups.append(None)  # about no leg: the fold skips it; any share will do
            continue
        first = None
        for key in keys:
            top = root(key) if key in parent else parent.setdefault(key, key)
            if first is None:
                first = top
            elif top != first:
                parent[top] = first
        groups.append(keys[0])
    shares: list[list[dict]] = [[] for _ in range(count)]
    share_of: dict[str, int] = {}
    for event, key in zip(events, groups, strict=True):
        group = root(key) if key is not None else None
        index = share_of.get(group) if group is not None else None
        if index is None:
            index = min(range(count), key=lambda i: len(shares[i]))
            if group is not None:
                share_of[group] = index
        shares[index].append(event)
    return shares


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
