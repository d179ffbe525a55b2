"""The pbx process: one asyncio loop that owns PBX servers and runs the apps on them.

Run by `python manage.py pbx [--server NAME ...]`. Every PBX_LEASE_RENEW_SECONDS
the supervisor reads the enabled servers and takes or renews a lease on each
(telephony.services.servers): a server is driven by one process at a time, and
a standby process takes it over once the owner's lease lapses (it looks again
at the moment the lease it saw runs out). Servers added, changed or disabled in
the admin are picked up on the next round; a server that cannot be started is
reported on its row and leaves the others alone.

Every write a ServerLink makes for its server (folds, reconciles, health reports,
its originates' records) checks the lease's epoch in its own transaction
(telephony.services.servers): an owner that was frozen or starved past its lease
and taken over writes nothing more, drops what it had queued, and lets go. Leases
are looked at in threads of their own, so app work never delays a renewal, and a
renewal that meets a busy database is tried again at once; a lease that lapsed
while the database made everybody wait is not taken over (its owner's renewal may
be queued behind the same lock).
A link whose lease went unrenewed for longer than the lease itself (the process
stalled) holds the events it receives, away from the fold and the apps, until
the next look says whether the server is still its own.

For each owned server a `ServerLink` holds the AMI session, folds call events
into call records (in one database thread of its own, batched; with `--fold-workers N` in N
child processes, telephony.folding), publishes the typed events after each fold commits to the
apps' lanes, hands the raw events
an app asked for to its lane, serves the apps' FastAGI scripts, and reconciles open records against the PBX's
live channels on each connect and every RECONCILE_SECONDS.
"""

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
import weakref
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, close_old_connections, connection, connections, transaction
from django.utils import timezone

from telephony.agi import make_agi_handler
from telephony.ami import (
    AmiClient,
    AmiConnectionLost,
    AmiEndpoint,
    AmiError,
    OriginateOutcome,
    OriginateOutcomeUnknown,
)
from telephony.events import CallEvent
from telephony.folding import FoldDispatch, FoldWorker, FoldWorkerDied
from telephony.handle import PbxHandle
from telephony.platform import AppContext, Lane, PbxApp, ami_events_read, registered_apps
from telephony.selectors import pbx_servers_enabled
from telephony.services import calls, servers

log = logging.getLogger(__name__)

FOLD_BATCH = 1000
FOLD_GATHER_SECONDS = 0.01
# A busy database is retried after this, doubling up to the max, for as long as it stays busy.
FOLD_RETRY_SECONDS = 0.1
FOLD_RETRY_MAX_SECONDS = 2.0
# Past this many events waiting to be folded, the AMI socket is read no more until the fold catches up.
QUEUE_HIGH_WATER = 50_000
QUEUE_LOW_WATER = 10_000
RECONCILE_SECONDS = 60.0
APP_THREADS = 4
# Reads (an app's ctx.read: a caller's card and PIN checked, a board refreshed) have threads of
# their own, so they never queue behind writes waiting for SQLite's write lock or a row lock.
READ_THREADS = 4
LEASE_THREADS = 2
STOP_TIMEOUT = 10.0
# A renewal that met a busy database (an error, or a long wait for its lock) is tried again this soon.
LEASE_RETRY_SECONDS = 0.2
# A standby looks again this long after the lease it saw runs out (clocks of one host, or NTP's).
LEASE_LOOK_MARGIN_SECONDS = 0.05


# The PostgreSQL sessions already told how long they may sit idle inside a transaction.
_idle_bounded: "weakref.WeakSet" = weakref.WeakSet()


def _bound_idle_transactions():
    """PostgreSQL: a transaction of this process left idle longer than a lease (the process frozen
    mid-fold, holding the server's row) is ended by the server, so its locks do not outlive the
    lease that the standby, which needs that row, is taking over."""
    if connection.vendor != "postgresql":
        return
    connection.ensure_connection()
    raw = connection.connection
    if raw in _idle_bounded:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET idle_in_transaction_session_timeout = '{settings.PBX_LEASE_SECONDS * 1000}ms'")
    _idle_bounded.add(raw)


def _in_thread(function, kwargs):
    """A sync service, with the connection hygiene of a long-running process."""
    close_old_connections()
    try:
        _bound_idle_transactions()
        return function(**kwargs)
    finally:
        close_old_connections()


async def _close_connections(threads: concurrent.futures.ThreadPoolExecutor, count: int):
    """Each of a pool's threads closes its database connections: one task each, held at a barrier
    until all have run, so no thread takes two (a session left open keeps a database from being
    dropped, a test's one too)."""
    barrier = threading.Barrier(count)

    def close():
        connections.close_all()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(STOP_TIMEOUT)

    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(threads, close) for _ in range(count)))


def _fenced(*, service, lease: servers.Lease, kwargs: dict):
    """A sync service in one transaction that first proves `lease` still holds its server."""
    with transaction.atomic():
        servers.pbx_server_lease_check(lease=lease)
        return service(**kwargs)


def _drop_queued(queue: asyncio.Queue) -> int:
    dropped = 0
    while not queue.empty():
        queue.get_nowait()
        queue.task_done()
        dropped += 1
    return dropped


def _fingerprint(server) -> tuple:
    return (
        server.ami_host,
        server.ami_port,
        server.ami_username,
        server.ami_secret,
        server.agi_bind_host,
        server.agi_bind_port,
        server.outbound_caller_id,
    )


class ServerLink:
    """Everything the process runs for one PBX server it owns."""

    def __init__(self, server, process: "PbxProcess", lease: servers.Lease):
        self.server = server
        self.process = process
        # The fencing token every write for this server carries; a link lives within one epoch.
        self.lease = lease
        self.fenced = False
        self.dropped = 0  # events not folded because the lease was lost
        # When the last look that found the lease ours began (monotonic), and the events received
        # since it may have run out, held until the next look says whose the server is.
        self.lease_renewed_at = time.monotonic()
        self.held: list[dict] | None = None
        # Set while the last look found the lease ours recently enough: the apps' lanes wait on it.
        self.lease_sure = asyncio.Event()
        self.lease_sure.set()
        self.fingerprint = _fingerprint(server)
        self.events: asyncio.Queue = asyncio.Queue()
        self.background: set[asyncio.Task] = set()
        self.client: AmiClient | None = None
        self.handle: PbxHandle | None = None
        self.agi_server: asyncio.AbstractServer | None = None
        self.tasks: list[asyncio.Task] = []
        self.contexts: list[AppContext] = []
        self.waiters: dict[str, asyncio.Future] = {}
        # The fold has a thread (and database connection) of its own: apps' work never queues before it.
        self.fold_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"fold-{server.name}")
        # With `pbx --fold-workers N`, child processes that fold the batches' shares (telephony.folding);
        # the fold thread then only reconciles.
        self.fold_workers = [FoldWorker(f"{server.name}/{number}") for number in range(process.fold_workers)]
        self.dispatch: FoldDispatch | None = None
        # Held by a batch's fold and by the reconcile: with fold workers they run in other threads
        # and processes, and the reconcile's cut-off assumes nothing is being folded meanwhile.
        self.folding = asyncio.Lock()
        self.state = "unknown"
        self.error = ""
        self.paused = False
        self.timestamped: bool | None = None
        self.started_once = False
        # State reports run in a pool of threads: one at a time, so they land in the order they happened.
        self.reporting = asyncio.Lock()
        # What the fold and the apps read; every other event is dropped unparsed (telephony.ami).
        self.app_events = ami_events_read(process.apps)
        self.events_wanted = None if self.app_events is None else calls.FOLDED_EVENTS | self.app_events

    # -- lifecycle -------------------------------------------------------------

    async def start(self):
        server = self.server
        try:
            server.clean_fields()
        except ValidationError as exc:
            # Saved past the admin's validation (a shell, an import): said here, by field, rather than
            # deep in a socket call as a misleading "no login answer", or only in the log (FastAGI).
            raise ValueError(
                "; ".join(
                    f"{server._meta.get_field(field).verbose_name}: {' '.join(errors)}"
                    for field, errors in exc.message_dict.items()
                )
            ) from None
        for app in self.process.apps:
            lane = Lane(f"{app.name}@{server.name}", gate=self.lease_gate)
            lane.start()
            self.contexts.append(AppContext(app, self, lane))
        self.client = AmiClient(
            AmiEndpoint(
                server.name, server.ami_host, server.ami_port, server.ami_username, server.ami_secret
            ),
            on_event=self._on_event,
            events_wanted=self.events_wanted,
            on_state=self._on_state,
            backoff_max=settings.PBX_RECONNECT_MAX_SECONDS,
        )
        self.handle = PbxHandle(server, self.client, db=self.db_fenced, outcomes=self._outcome)
        # Started before the AMI session, so the first batch does not wait for Django's set-up in them.
        await asyncio.gather(*(worker.start() for worker in self.fold_workers))
        self.client.start()
        try:
            self.agi_server = await asyncio.start_server(
                make_agi_handler(server, self._agi_scripts()), server.agi_bind_host, server.agi_bind_port
            )
        except (OSError, OverflowError) as exc:
            # AMI still works (call records, originates); the IVR scripts of this server do not.
            log.error(
                "FastAGI for %s cannot listen on %s:%s: %s",
                server.name,
                server.agi_bind_host,
                server.agi_bind_port,
                exc,
            )
        else:
            log.info("FastAGI for %s on %s:%s", server.name, server.agi_bind_host, server.agi_bind_port)
        self.tasks = [
            asyncio.create_task(self._fold_loop()),
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._reconcile_loop()),
        ]
        if self.fold_workers:
            self.dispatch = FoldDispatch(self.fold_workers, fold=self._fold, folded=self._folded)
            self.tasks += self.dispatch.tasks

    def _agi_scripts(self) -> dict:
        scripts = {}
        for ctx in self.contexts:
            for script, method in ctx.app.agi_scripts.items():
                scripts[script] = partial(getattr(ctx.app, method), ctx)
        return scripts

    async def stop(self, why: str = "the pbx process stopped"):
        for ctx in self.contexts:
            ctx.cancel_all()
            if not self.fenced:  # a fenced link's apps have nothing more to say to the database
                ctx.deliver("stopping")
        if self.client:
            self.client.close()
        if self.agi_server:
            self.agi_server.close()
        await self.events.join()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(ctx.lane.stop(STOP_TIMEOUT) for ctx in self.contexts))
        for waiter in self.waiters.values():
            waiter.cancel()
        try:
            await self.process.lease_db(
                servers.pbx_server_lease_release,
                server_id=self.server.pk,
                owner=self.process.owner,
                error=why,
                lease=self.lease,
            )
        finally:
            await asyncio.get_running_loop().run_in_executor(self.fold_thread, connections.close_all)
            self.fold_thread.shutdown(wait=False)
            for worker in self.fold_workers:
                await asyncio.get_running_loop().run_in_executor(None, worker.close)
        if self.fenced:
            log.error(
                "PBX server %s: stopped without its lease; %d event(s) dropped, not folded",
                self.server.name,
                self.dropped,
            )

    def fence(self, why: str):
        """The lease is gone (another process took the server over): write nothing more for this
        server. What is queued (events not folded, app work) is dropped, the AMI session closed at
        once, so no app acts on the PBX for a server it no longer owns; the supervisor then stops
        the link."""
        if self.fenced:
            return
        self.fenced = True
        if self.client:
            self.client.close()
        self.dropped += _drop_queued(self.events) + len(self.held or [])
        self.held = None
        self.lease_sure.set()  # the lanes waiting on the lease drop their work now
        for ctx in self.contexts:
            ctx.cancel_all()
            dropped_work = _drop_queued(ctx.lane.queue)
            if dropped_work:
                log.warning("app lane %s: %d item(s) dropped with the lease", ctx.lane.name, dropped_work)
        log.error("PBX server %s: lease lost (%s); dropping the queue, letting go", self.server.name, why)
        self.process.wakeup.set()

    def lease_doubtful(self) -> bool:
        """The lease may have run out unseen: events are held, or no look found it ours for longer
        than a lease lasts (the process was stalled)."""
        if self.held is not None or time.monotonic() - self.lease_renewed_at > settings.PBX_LEASE_SECONDS:
            if self.lease_sure.is_set():
                self.lease_sure.clear()
                self.process.wakeup.set()  # the supervisor looks now
            return True
        return False

    async def lease_gate(self) -> bool:
        """Before an app's work (a due timer, an event, a periodic task): False once the lease is
        lost; while it is in doubt, wait for the next look to say whose the server is."""
        while not self.fenced and self.lease_doubtful():
            await self.lease_sure.wait()
        return not self.fenced

    async def db_fenced(self, function, **kwargs):
        """A sync service, in one transaction that proves this link still holds its lease."""
        try:
            return await self.process.db(_fenced, service=function, lease=self.lease, kwargs=kwargs)
        except servers.LeaseLost as exc:
            self.fence(str(exc))
            raise

    # -- AMI -------------------------------------------------------------------

    def _on_event(self, client, event: dict):
        # The dict telephony.ami parsed the frame into, the one the fold and the lanes are given.
        event["_received"] = time.time()
        if self.fenced:
            self.dropped += 1
            return
        if self.held is None and time.monotonic() - self.lease_renewed_at > settings.PBX_LEASE_SECONDS:
            # Our lease may have run out unseen (the process stalled: a GC pause, SIGSTOP, a swapped
            # VM): neither the fold nor an app acts on the PBX's news until a look says it is still ours.
            self.held = []
            log.warning(
                "PBX server %s: lease not renewed for %.1f s; holding events until it is",
                self.server.name,
                time.monotonic() - self.lease_renewed_at,
            )
            self.process.wakeup.set()
        if self.held is not None:
            self.held.append(event)
            # Held events count against the same bound as those waiting to be folded: a look that
            # takes long (a busy database) must not let memory grow with the PBX's traffic.
            if not self.paused and len(self.held) + self.events.qsize() >= QUEUE_HIGH_WATER:
                self.paused = True
                self.client.pause_reading()
                log.warning(
                    "AMI %s: %d events held until the lease is renewed; reading paused",
                    self.server.name,
                    len(self.held),
                )
            return
        self._accept(event)

    def lease_renewed(self, asked: float):
        """A look that started at `asked` (monotonic) found the lease still ours: what was held goes on."""
        self.lease_renewed_at = max(self.lease_renewed_at, asked)
        held, self.held = self.held, None
        if not self.lease_doubtful():
            self.lease_sure.set()
        for event in held or []:
            self._accept(event)

    def _accept(self, event: dict):
        """An event of this server's AMI session, while the lease is ours: to the fold and the apps."""
        name = event.get("Event")
        if name == "OriginateResponse" and self.waiters:
            # The outcome is Asterisk's word: whoever awaits it need not wait for the fold.
            waiter = self.waiters.pop(event.get("Uniqueid", ""), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(OriginateOutcome.from_event(event))
        if name in calls.FOLDED_EVENTS:
            stamped = "Timestamp" in event
            if stamped != self.timestamped:
                self.timestamped = stamped
                if not stamped:
                    log.warning(
                        "AMI %s: events carry no Timestamp, so calls are timed on arrival; "
                        "set timestampevents = yes in manager.conf",
                        self.server.name,
                    )
            self.events.put_nowait(event)
            if not self.paused and self.events.qsize() >= QUEUE_HIGH_WATER:
                self.paused = True
                self.client.pause_reading()
                log.warning(
                    "AMI %s: %d events wait to be folded; reading paused", self.server.name, QUEUE_HIGH_WATER
                )
        if self.app_events is None or name in self.app_events:
            for ctx in self.contexts:
                if ctx.app.wants_ami(event):
                    ctx.deliver_ami_event(event)

    def _on_state(self, client, state, error):
        self.state, self.error = state, error
        self._background(self._state_changed(state, error))

    def _background(self, coroutine):
        # Kept until done: the loop holds only weak references to tasks.
        task = asyncio.create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _state_changed(self, state, error):
        try:
            await self._report(state=state, error=error)
            if self.fenced:
                return
            if state == "connected":
                await self._reconcile()
                if not self.started_once:
                    self.started_once = True
                    for ctx in self.contexts:
                        await ctx.rebuild_timers()
                for ctx in self.contexts:
                    ctx.deliver("started")
            elif state == "down":
                for ctx in self.contexts:
                    ctx.deliver("disconnected")
        except Exception:
            log.exception("AMI %s: handling the state %s failed", self.server.name, state)

    async def _report(self, **fields):
        if self.fenced:
            return
        async with self.reporting:
            held = await self.process.db(
                servers.pbx_server_state_set,
                server_id=self.server.pk,
                owner=self.process.owner,
                lease=self.lease,
                **fields,
            )
        if not held:
            self.fence("its health report found another owner")

    async def _reconcile(self):
        """Calls that ended unseen (a drop, a PBX restart, a lost OriginateResponse) are closed."""
        await self.events.join()  # what arrived before the list is folded first; the cutoff follows it
        listed_at = timezone.now()
        try:
            frames = await self.client.send_checked({"Action": "CoreShowChannels"}, timeout=10)
        except (AmiError, AmiConnectionLost) as exc:
            log.warning("AMI %s: cannot list channels to reconcile: %s", self.server.name, exc)
            return
        # Their ages count back from the PBX's clock, which Ping tells (always stamped), as events do.
        received = time.time()
        try:
            pong = await self.client.send_checked({"Action": "Ping"}, timeout=10)
            clock = {"Timestamp": pong.get("Timestamp", ""), "_received": time.time()}
        except (AmiError, AmiConnectionLost):
            clock = {"_received": received}
        channels = [{**f, **clock} for f in frames if f.get("Event") == "CoreShowChannel"]
        # What the list says of each live call goes into its record too: a call begun under another
        # session (a takeover, a reconnect) is known from here on by more than its Uniqueid.
        try:
            async with self.folding:
                if self.dispatch is not None:
                    await self.dispatch.idle()  # what was handed to the workers before the list too
                typed = await self._in_fold_thread(
                    calls.call_records_reconcile,
                    server_id=self.server.pk,
                    live_uniqueids={f.get("Uniqueid") for f in channels},
                    listed_at=listed_at,
                    channels=channels,
                    lease=self.lease,
                )
        except servers.LeaseLost as exc:
            self.fence(str(exc))
            return
        self._publish(typed)

    async def _reconcile_loop(self):
        while True:
            await asyncio.sleep(RECONCILE_SECONDS)
            if self.client.connected.is_set() and not self.fenced:
                try:
                    await self._reconcile()
                except Exception:
                    log.exception("AMI %s: periodic reconcile failed", self.server.name)

    # -- folding and publishing ------------------------------------------------

    async def _in_fold_thread(self, function, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(
            self.fold_thread, _in_thread, function, kwargs
        )

    async def _fold_loop(self):
        while True:
            batch = [await self.events.get()]
            # Gather what follows for a moment: one transaction per burst of events, not per event,
            # keeps the database's write lock free for the web and worker processes.
            await asyncio.sleep(FOLD_GATHER_SECONDS)
            # With fold workers, a batch each: a share's transaction costs what a batch's did.
            while len(batch) < FOLD_BATCH * max(1, len(self.fold_workers)) and not self.events.empty():
                batch.append(self.events.get_nowait())
            if self.dispatch is not None and not self.fenced:
                # To the fold workers, without waiting for the batch to commit; each share is
                # accounted for (`_folded`) once its worker is done with it.
                async with self.folding:
                    await self.dispatch.put(batch)
                continue
            try:
                if self.fenced:  # the server is another process's now
                    self.dropped += len(batch)
                else:
                    async with self.folding:
                        await self._fold(batch)
            finally:
                self._folded(batch)

    def _folded(self, events):
        for _ in events:
            self.events.task_done()
        if self.paused and self.events.qsize() <= QUEUE_LOW_WATER:
            self.paused = False
            self.client.resume_reading()

    async def _fold(self, batch, worker: FoldWorker | None = None):
        """Fold a batch (in `worker`, or the fold thread). A busy database (OperationalError: a lock
        held long, a connection lost) is waited out, however long, the events held: dropping them
        would lose Hangups. A batch that fails otherwise is folded event by event, so one event the
        database refuses costs that event only (logged), never its neighbours."""
        if await self._fold_waiting_out_busy(batch, worker):
            return
        for number, event in enumerate(batch):
            if self.fenced:
                self.dropped += len(batch) - number
                return
            try:
                await self._fold_waiting_out_busy([event], worker)
            except Exception:
                log.exception(
                    "AMI %s: cannot fold %s of %s",
                    self.server.name,
                    event.get("Event"),
                    event.get("Uniqueid") or event.get("DestUniqueid") or event.get("UniqueID"),
                )

    async def _fold_waiting_out_busy(self, events, worker: FoldWorker | None = None) -> bool:
        """Fold `events` in one transaction, retrying while the database is busy: True once folded,
        or dropped with the lease; False when a single-event fold should be tried (a batch that
        failed otherwise, or killed its fold worker twice). A single event's other error is raised."""
        attempt = 0
        deaths = 0
        while not self.fenced:
            try:
                if worker is None:
                    typed = await self._in_fold_thread(
                        calls.call_events_fold, server_id=self.server.pk, events=events, lease=self.lease
                    )
                else:
                    typed = await worker.fold(server_id=self.server.pk, events=events, lease=self.lease)
                self._publish(typed)
                return True
            except FoldWorkerDied as exc:
                # Folded again by the fresh worker: idempotent, whether the dead one committed or not.
                deaths += 1
                log.error("AMI %s: %s; folding its %d event(s) again", self.server.name, exc, len(events))
                if deaths >= 2:
                    if len(events) == 1:
                        raise
                    return False
            except servers.LeaseLost as exc:
                self.fence(str(exc))
                break
            except OperationalError as exc:
                log.warning(
                    "AMI %s: database busy folding %d events (%s), retrying",
                    self.server.name,
                    len(events),
                    exc,
                )
                await asyncio.sleep(min(FOLD_RETRY_SECONDS * 2**attempt, FOLD_RETRY_MAX_SECONDS))
                attempt = min(attempt + 1, 20)
            except Exception:
                if len(events) == 1:
                    raise
                return False
        self.dropped += len(events)
        return True

    def _publish(self, typed: list[CallEvent]):
        """Committed typed events to the apps' lanes."""
        if self.fenced:
            return
        for event in typed:
            for ctx in self.contexts:
                if ctx.app.wants_call(event):
                    ctx.deliver_call_event(event)

    async def _outcome(self, channel_id: str, timeout: float) -> OriginateOutcome:
        waiter = self.waiters[channel_id] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise OriginateOutcomeUnknown(
                f"Originate {channel_id}: no outcome within {timeout:.0f} s"
            ) from None
        finally:
            self.waiters.pop(channel_id, None)

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(settings.PBX_LEASE_RENEW_SECONDS)
            if self.state != "connected":
                continue
            try:
                await self._report(
                    state="connected",
                    last_event_at=self.client.last_event_at,
                    event_lag=self.events.qsize(),
                    events_timestamped=self.timestamped,
                )
            except Exception:
                log.exception("AMI %s: heartbeat not recorded", self.server.name)


class PbxProcess:
    """Owns the servers it can lease (all enabled ones, or those named), one ServerLink each."""

    def __init__(
        self,
        *,
        apps: list[PbxApp] | None = None,
        server_names: list[str] | None = None,
        standby: bool = False,
        fold_workers: int = 0,
    ):
        self.apps = registered_apps() if apps is None else apps
        self.server_names = server_names
        # A standby takes a free server only once its owners had a lease's time to take it
        # (telephony.services.servers.pbx_server_lease_take); a dead owner's, as soon as it lapses.
        self.standby = standby
        self.started_at = time.monotonic()
        # Child processes folding each server's events (0: the fold thread, as without the flag).
        self.fold_workers = fold_workers
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.links: dict[int, ServerLink] = {}
        # Links being stopped (still listed in `links` until they are).
        self.stopping_links: dict[int, asyncio.Task] = {}
        # The leases this process holds, by server: a server that failed to start is held too.
        self.leases: dict[int, servers.Lease] = {}
        # When a look at a server's lease last met a busy database (monotonic clock).
        self.busy_at: dict[int, float] = {}
        # Servers that could not start, with the settings they failed with: tried again once changed.
        self.failed: dict[int, tuple] = {}
        self.stopping = asyncio.Event()
        # Set by a link that lost its lease: the supervisor stops it now, not at the next round.
        self.wakeup = asyncio.Event()
        self.app_threads = concurrent.futures.ThreadPoolExecutor(APP_THREADS, thread_name_prefix="pbx-db")
        self.read_threads = concurrent.futures.ThreadPoolExecutor(READ_THREADS, thread_name_prefix="pbx-read")
        # Leases have threads of their own: a renewal never waits behind the apps' database work.
        self.lease_threads = concurrent.futures.ThreadPoolExecutor(
            LEASE_THREADS, thread_name_prefix="pbx-lease"
        )

    async def db(self, function, **kwargs):
        """Run a sync service in one of the process's database threads."""
        return await asyncio.get_running_loop().run_in_executor(
            self.app_threads, _in_thread, function, kwargs
        )

    async def read(self, function, **kwargs):
        """Run a read-only sync service in one of the threads kept for reads."""
        return await asyncio.get_running_loop().run_in_executor(
            self.read_threads, _in_thread, function, kwargs
        )

    async def lease_db(self, function, **kwargs):
        """Run a sync service about leases in a thread kept for them."""
        return await asyncio.get_running_loop().run_in_executor(
            self.lease_threads, _in_thread, function, kwargs
        )

    async def run(self, servers_given=None, *, install_signals=True):
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stopping.set)
        log.info("pbx process %s: apps %s", self.owner, ", ".join(a.name for a in self.apps) or "none")
        warned = False
        while not self.stopping.is_set():
            self.wakeup.clear()
            delay = settings.PBX_LEASE_RENEW_SECONDS
            try:
                wanted = (
                    servers_given
                    if servers_given is not None
                    else await self.lease_db(pbx_servers_enabled, names=self.server_names)
                )
                if not wanted and not warned:
                    log.warning("no enabled PBX server: add one in the admin; waiting for it")
                warned = not wanted
                delay = await self._supervise(wanted)
            except OperationalError as exc:
                log.warning("pbx process: database busy (%s); trying again", exc)
                delay = LEASE_RETRY_SECONDS
            except Exception:
                log.exception("pbx process: supervising the servers failed; trying again")
            await self._pause(delay)
        log.info("stopping: closing AMI sessions and FastAGI, folding what is queued")
        for pk in [pk for pk in self.links if pk not in self.stopping_links]:
            self._stop_link(pk, "the pbx process stopped")
        await asyncio.gather(*self.stopping_links.values(), return_exceptions=True)
        for threads, count in (
            (self.app_threads, APP_THREADS),
            (self.read_threads, READ_THREADS),
            (self.lease_threads, LEASE_THREADS),
        ):
            await _close_connections(threads, count)
            threads.shutdown(wait=False)

    async def _pause(self, seconds: float):
        """Until the next round: `seconds`, or less if the process is stopping or a link lost its lease."""
        waits = [asyncio.ensure_future(self.stopping.wait()), asyncio.ensure_future(self.wakeup.wait())]
        try:
            await asyncio.wait(waits, timeout=max(seconds, 0.0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def _stop_link(self, pk: int, why: str):
        """Stop a link in the background: a stop waits for its fold and its apps' lanes (seconds),
        and the other servers' renewals must not wait for it."""
        link = self.links[pk]

        async def stop():
            try:
                await link.stop(why)
            finally:
                # Listed until stopped: whoever reads `links` sees only links that are really gone.
                del self.links[pk]
                del self.stopping_links[pk]
                if self.leases.get(pk) == link.lease:
                    del self.leases[pk]  # released by the stop (or lost already)
                self.wakeup.set()  # its successor, if any, starts now

        self.stopping_links[pk] = asyncio.create_task(stop(), name=f"stop {link.server.name}")

    async def _supervise(self, wanted) -> float:
        """Take, renew or give up each server's lease; returns how long to wait before the next round:
        a renewal period, or less when a lease seen held by another process runs out sooner (a
        standby takes over the moment it may) or the database was busy (a renewal is retried soon)."""
        delay = settings.PBX_LEASE_RENEW_SECONDS
        wanted_ids = {server.pk for server in wanted}
        for pk in [pk for pk in self.links if pk not in wanted_ids and pk not in self.stopping_links]:
            log.info("PBX server %s disabled or removed: giving it up", self.links[pk].server.name)
            self._stop_link(pk, "disabled in the admin")
        for pk in [pk for pk in self.leases if pk not in wanted_ids and pk not in self.links]:
            del self.leases[pk]
        for server in wanted:
            link = self.links.get(server.pk)
            stopping = server.pk in self.stopping_links
            if link and link.fenced and not stopping:
                self._stop_link(server.pk, "taken over by another pbx process")
                stopping = True
            asked = time.monotonic()
            look = await self._look(server)
            if look is None:
                delay = min(delay, LEASE_RETRY_SECONDS)
                continue
            if look.lease is None:
                self.leases.pop(server.pk, None)
                if link:
                    link.fence("another pbx process took the server over")
                    if not stopping:
                        self._stop_link(server.pk, "taken over by another pbx process")
                if look.holder_expires_at is not None:
                    left = (look.holder_expires_at - timezone.now()).total_seconds()
                    if left > 0:
                        delay = min(delay, left + LEASE_LOOK_MARGIN_SECONDS)
                continue
            self.leases[server.pk] = look.lease
            if link:
                link.lease_renewed(asked)
                if not stopping and link.fingerprint != _fingerprint(server):
                    log.info("PBX server %s changed in the admin: reconnecting", server.name)
                    self._stop_link(server.pk, "reconnecting with the new settings")
            elif self.failed.get(server.pk) != _fingerprint(server):
                await self._start(server, look.lease)
        return delay

    async def _look(self, server) -> servers.LeaseLook | None:
        """Renew or take one server's lease; None when the database was too busy to say."""
        held = self.leases.get(server.pk)
        busy_at = self.busy_at.get(server.pk)
        asked = time.monotonic()
        # After a busy look, a lapsed lease is not taken for a renewal period: its owner's renewal,
        # queued behind the same lock, goes through first.
        take_over = busy_at is None or asked - busy_at >= settings.PBX_LEASE_RENEW_SECONDS
        patience = {}
        if self.standby:
            lease = settings.PBX_LEASE_SECONDS
            patience = {
                "take_free": asked - self.started_at >= lease,
                "freed_before": timezone.now() - dt.timedelta(seconds=lease),
            }
        try:
            look = await self.lease_db(
                servers.pbx_server_lease_take,
                server_id=server.pk,
                owner=self.owner,
                held=held,
                take_over=take_over,
                **patience,
            )
        except OperationalError as exc:
            self.busy_at[server.pk] = time.monotonic()
            what = "lease not renewed yet" if held else "lease not looked at"
            log.warning("PBX server %s: %s, the database is busy (%s); trying again", server.name, what, exc)
            return None
        if time.monotonic() - asked > servers.lease_lock_wait_max():
            self.busy_at[server.pk] = time.monotonic()
        return look

    async def _start(self, server, lease: servers.Lease):
        link = ServerLink(server, self, lease)
        try:
            await link.start()
        except Exception as exc:
            # One server's bad settings must not take the others down.
            log.exception("PBX server %s cannot start", server.name)
            self.failed[server.pk] = link.fingerprint
            await link.stop(f"cannot start: {exc}")
            self.leases.pop(server.pk, None)
            return
        self.failed.pop(server.pk, None)
        self.links[server.pk] = link
