"""The pbx process: one asyncio loop that owns PBX servers and runs the apps on them.

Run by `python manage.py pbx [--server NAME ...]`. Every PBX_LEASE_RENEW_SECONDS
the supervisor reads the enabled servers and takes or renews a lease on each
(telephony.services.servers): a server is driven by one process at a time, and
a standby process takes it over once the owner's lease lapses. Servers added,
changed or disabled in the admin are picked up on the next round; a server that
cannot be started is reported on its row and leaves the others alone.

For each owned server a `ServerLink` holds the AMI session, folds call events
into call records (in one database thread of its own, batched), publishes the
typed events after each fold commits to the apps' lanes, hands the raw events
an app asked for to its lane, serves the apps' FastAGI scripts, and reconciles open records against the PBX's
live channels on each connect and every RECONCILE_SECONDS.
"""

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import socket
import time
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, close_old_connections, connections
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
from telephony.handle import PbxHandle
from telephony.platform import AppContext, Lane, PbxApp, registered_apps
from telephony.selectors import pbx_servers_enabled
from telephony.services import calls, servers

log = logging.getLogger(__name__)

FOLD_BATCH = 1000
FOLD_GATHER_SECONDS = 0.01
FOLD_RETRIES = 5
# Past this many events waiting to be folded, the AMI socket is read no more until the fold catches up.
QUEUE_HIGH_WATER = 50_000
QUEUE_LOW_WATER = 10_000
RECONCILE_SECONDS = 60.0
APP_THREADS = 4
STOP_TIMEOUT = 10.0


def _in_thread(function, kwargs):
    """A sync service, with the connection hygiene of a long-running process."""
    close_old_connections()
    try:
        return function(**kwargs)
    finally:
        close_old_connections()


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

    def __init__(self, server, process: "PbxProcess"):
        self.server = server
        self.process = process
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
        self.state = "unknown"
        self.error = ""
        self.paused = False
        self.timestamped: bool | None = None
        self.started_once = False
        # State reports run in a pool of threads: one at a time, so they land in the order they happened.
        self.reporting = asyncio.Lock()

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
            lane = Lane(f"{app.name}@{server.name}")
            lane.start()
            self.contexts.append(AppContext(app, self, lane))
        self.client = AmiClient(
            AmiEndpoint(
                server.name, server.ami_host, server.ami_port, server.ami_username, server.ami_secret
            ),
            on_event=self._on_event,
            on_state=self._on_state,
        )
        self.handle = PbxHandle(server, self.client, db=self.process.db, outcomes=self._outcome)
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

    def _agi_scripts(self) -> dict:
        scripts = {}
        for ctx in self.contexts:
            for script, method in ctx.app.agi_scripts.items():
                scripts[script] = partial(getattr(ctx.app, method), ctx)
        return scripts

    async def stop(self, why: str = "the pbx process stopped"):
        for ctx in self.contexts:
            ctx.cancel_all()
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
            await self.process.db(
                servers.pbx_server_lease_release,
                server_id=self.server.pk,
                owner=self.process.owner,
                error=why,
            )
        finally:
            await asyncio.get_running_loop().run_in_executor(self.fold_thread, connections.close_all)
            self.fold_thread.shutdown(wait=False)

    # -- AMI -------------------------------------------------------------------

    def _on_event(self, client, message):
        event = dict(message)
        event["_received"] = time.time()
        if event.get("Event") == "OriginateResponse" and self.waiters:
            # The outcome is Asterisk's word: whoever awaits it need not wait for the fold.
            waiter = self.waiters.pop(event.get("Uniqueid", ""), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(OriginateOutcome.from_event(event))
        if event.get("Event") in calls.FOLDED_EVENTS:
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
                client.pause_reading()
                log.warning(
                    "AMI %s: %d events wait to be folded; reading paused", self.server.name, QUEUE_HIGH_WATER
                )
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
        async with self.reporting:
            await self.process.db(
                servers.pbx_server_state_set, server_id=self.server.pk, owner=self.process.owner, **fields
            )

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
        typed = await self._in_fold_thread(
            calls.call_records_reconcile,
            server_id=self.server.pk,
            live_uniqueids={f.get("Uniqueid") for f in channels},
            listed_at=listed_at,
            channels=channels,
        )
        self._publish(typed)

    async def _reconcile_loop(self):
        while True:
            await asyncio.sleep(RECONCILE_SECONDS)
            if self.client.connected.is_set():
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
            while len(batch) < FOLD_BATCH and not self.events.empty():
                batch.append(self.events.get_nowait())
            try:
                await self._fold(batch)
            finally:
                for _ in batch:
                    self.events.task_done()
                if self.paused and self.events.qsize() <= QUEUE_LOW_WATER:
                    self.paused = False
                    self.client.resume_reading()

    async def _fold(self, batch):
        """Fold a batch; wait out a busy database; a batch that still fails is folded event by
        event, so one event the database refuses costs that event only (logged), never its neighbours."""
        for attempt in range(FOLD_RETRIES):
            try:
                self._publish(
                    await self._in_fold_thread(calls.call_events_fold, server_id=self.server.pk, events=batch)
                )
                return
            except OperationalError as exc:
                log.warning(
                    "AMI %s: database busy folding %d events (%s), retrying",
                    self.server.name,
                    len(batch),
                    exc,
                )
                await asyncio.sleep(0.1 * 2**attempt)
            except Exception:
                break
        for event in batch:
            try:
                self._publish(
                    await self._in_fold_thread(
                        calls.call_events_fold, server_id=self.server.pk, events=[event]
                    )
                )
            except Exception:
                log.exception(
                    "AMI %s: cannot fold %s of %s",
                    self.server.name,
                    event.get("Event"),
                    event.get("Uniqueid") or event.get("DestUniqueid") or event.get("UniqueID"),
                )

    def _publish(self, typed: list[CallEvent]):
        """Committed typed events to the apps' lanes."""
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

    def __init__(self, *, apps: list[PbxApp] | None = None, server_names: list[str] | None = None):
        self.apps = registered_apps() if apps is None else apps
        self.server_names = server_names
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.links: dict[int, ServerLink] = {}
        # Servers that could not start, with the settings they failed with: tried again once changed.
        self.failed: dict[int, tuple] = {}
        self.stopping = asyncio.Event()
        self.app_threads = concurrent.futures.ThreadPoolExecutor(APP_THREADS, thread_name_prefix="pbx-db")

    async def db(self, function, **kwargs):
        """Run a sync service in one of the process's database threads."""
        return await asyncio.get_running_loop().run_in_executor(
            self.app_threads, _in_thread, function, kwargs
        )

    async def run(self, servers_given=None, *, install_signals=True):
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stopping.set)
        log.info("pbx process %s: apps %s", self.owner, ", ".join(a.name for a in self.apps) or "none")
        warned = False
        while not self.stopping.is_set():
            try:
                wanted = (
                    servers_given
                    if servers_given is not None
                    else await self.db(pbx_servers_enabled, names=self.server_names)
                )
                if not wanted and not warned:
                    log.warning("no enabled PBX server: add one in the admin; waiting for it")
                warned = not wanted
                await self._supervise(wanted)
            except Exception:
                log.exception("pbx process: supervising the servers failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), settings.PBX_LEASE_RENEW_SECONDS)
        log.info("stopping: closing AMI sessions and FastAGI, folding what is queued")
        await asyncio.gather(*(link.stop() for link in self.links.values()), return_exceptions=True)
        self.links.clear()
        await asyncio.get_running_loop().run_in_executor(self.app_threads, connections.close_all)
        self.app_threads.shutdown(wait=False)

    async def _supervise(self, wanted):
        wanted_ids = {server.pk for server in wanted}
        for pk in [pk for pk in self.links if pk not in wanted_ids]:
            link = self.links[pk]
            log.info("PBX server %s disabled or removed: giving it up", link.server.name)
            # Listed until stopped: whoever reads `links` sees only links that are really gone.
            await link.stop("disabled in the admin")
            del self.links[pk]
        for server in wanted:
            try:
                owned = await self.db(servers.pbx_server_lease_take, server_id=server.pk, owner=self.owner)
            except OperationalError as exc:
                log.warning("PBX server %s: lease not renewed (%s)", server.name, exc)
                continue
            link = self.links.get(server.pk)
            if not owned:
                if link:
                    log.error("PBX server %s: another process took it over; letting go", server.name)
                    await link.stop("taken over by another pbx process")
                    del self.links[server.pk]
                continue
            if link and link.fingerprint != _fingerprint(server):
                log.info("PBX server %s changed in the admin: reconnecting", server.name)
                await link.stop("reconnecting with the new settings")
                del self.links[server.pk]
                await self.db(servers.pbx_server_lease_take, server_id=server.pk, owner=self.owner)
                link = None
            if link is None and self.failed.get(server.pk) != _fingerprint(server):
                await self._start(server)

    async def _start(self, server):
        link = ServerLink(server, self)
        try:
            await link.start()
        except Exception as exc:
            # One server's bad settings must not take the others down.
            log.exception("PBX server %s cannot start", server.name)
            self.failed[server.pk] = link.fingerprint
            await link.stop(f"cannot start: {exc}")
            return
        self.failed.pop(server.pk, None)
        self.links[server.pk] = link
