"""The pbx process: one asyncio loop holding an AMI session per enabled PBX
server, folding call events into call records, feeding the event bus and
serving FastAGI. Run by `python manage.py pbx`.
"""

import asyncio
import logging
import signal
import time

from asgiref.sync import sync_to_async
from django.db import OperationalError, close_old_connections, connections
from django.utils import timezone

from telephony import services
from telephony.agi import make_agi_handler
from telephony.ami import AmiClient, AmiConnectionLost, AmiEndpoint, AmiError
from telephony.bus import EventBus, bus
from telephony.selectors import HEARTBEAT_SECONDS, pbx_servers_enabled

log = logging.getLogger(__name__)

FOLD_BATCH = 1000
FOLD_GATHER_SECONDS = 0.01
FOLD_RETRIES = 5


def _db(function):
    """A sync service in a worker thread, with the connection hygiene of a long-running process."""

    def run(**kwargs):
        close_old_connections()
        try:
            return function(**kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=True)


class ServerLink:
    """Everything the process runs for one PBX server."""

    def __init__(self, server, event_bus: EventBus, agi_scripts: dict | None = None):
        self.server = server
        self.bus = event_bus
        self.agi_scripts = agi_scripts
        self.events: asyncio.Queue = asyncio.Queue()
        # Bus handlers run one event after the other, in the order Asterisk sent them.
        self.bus_events: asyncio.Queue = asyncio.Queue()
        self.background: set[asyncio.Task] = set()
        self.client: AmiClient | None = None
        self.agi_server: asyncio.AbstractServer | None = None
        self.tasks: list[asyncio.Task] = []
        self.state = "unknown"
        self.error = ""
        self.received = 0
        self.folded = 0
        self.fold_seconds = 0.0

    async def start(self):
        self.client = AmiClient(
            AmiEndpoint(
                self.server.name,
                self.server.ami_host,
                self.server.ami_port,
                self.server.ami_username,
                self.server.ami_secret,
            ),
            on_event=self._on_event,
            on_state=self._on_state,
        )
        self.client.start()
        try:
            self.agi_server = await asyncio.start_server(
                make_agi_handler(self.server, self.agi_scripts),
                self.server.agi_bind_host,
                self.server.agi_bind_port,
            )
        except OSError as exc:
            # AMI still works (call records, the facade's calls); the IVR scripts of this server do not.
            log.error(
                "FastAGI for %s cannot listen on %s:%s: %s",
                self.server.name,
                self.server.agi_bind_host,
                self.server.agi_bind_port,
                exc,
            )
        else:
            log.info(
                "FastAGI for %s on %s:%s",
                self.server.name,
                self.server.agi_bind_host,
                self.server.agi_bind_port,
            )
        self.tasks = [
            asyncio.create_task(self._fold_loop()),
            asyncio.create_task(self._bus_loop()),
            asyncio.create_task(self._heartbeat()),
        ]

    async def stop(self):
        if self.client:
            self.client.close()
        if self.agi_server:
            self.agi_server.close()
        await self.events.join()
        await self.bus_events.join()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await _db(services.pbx_server_state_set)(
            server_id=self.server.pk, state="down", error="the pbx process stopped"
        )

    def _on_event(self, client, message):
        self.received += 1
        event = dict(message)
        event["_received"] = time.time()
        if event.get("Event") in services.FOLDED_EVENTS:
            self.events.put_nowait(event)
        if self.bus.handlers_for(event):
            self.bus_events.put_nowait(event)

    def _on_state(self, client, state, error):
        self.state, self.error = state, error
        # Kept until done: the loop holds only weak references to tasks.
        task = asyncio.create_task(self._state_changed(state, error))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _state_changed(self, state, error):
        try:
            await _db(services.pbx_server_state_set)(server_id=self.server.pk, state=state, error=error)
            if state == "connected":
                await self._reconcile()
        except Exception:
            log.exception("AMI %s: recording the state %s failed", self.server.name, state)

    async def _reconcile(self):
        """Calls that ended while we were away are closed, not forgotten."""
        listed_at = timezone.now()
        try:
            frames = await self.client.send_checked({"Action": "CoreShowChannels"}, timeout=10)
        except (AmiError, AmiConnectionLost) as exc:
            log.warning("AMI %s: cannot list channels to reconcile: %s", self.server.name, exc)
            return
        live = {f.get("Uniqueid") for f in frames if f.get("Event") == "CoreShowChannel"}
        await self.events.join()  # what arrived before the list is folded first
        await _db(services.call_records_reconcile)(
            server_id=self.server.pk, live_uniqueids=live, listed_at=listed_at
        )

    async def _fold_loop(self):
        fold = _db(services.call_events_fold)
        while True:
            batch = [await self.events.get()]
            # Gather what follows for a moment: one transaction per burst of events, not per event,
            # keeps the database's write lock free for the web and worker processes.
            await asyncio.sleep(FOLD_GATHER_SECONDS)
            while len(batch) < FOLD_BATCH and not self.events.empty():
                batch.append(self.events.get_nowait())
            started = time.perf_counter()
            try:
                await self._fold(fold, batch)
                self.folded += len(batch)
                self.fold_seconds += time.perf_counter() - started
            finally:
                for _ in batch:
                    self.events.task_done()

    async def _fold(self, fold, batch):
        """Fold a batch; wait out a busy database; a batch that still fails is folded event by
        event, so one event the database refuses costs that event only (logged), never its neighbours."""
        for attempt in range(FOLD_RETRIES):
            try:
                await fold(server_id=self.server.pk, events=batch)
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
                await fold(server_id=self.server.pk, events=[event])
            except Exception:
                log.exception(
                    "AMI %s: cannot fold %s of %s",
                    self.server.name,
                    event.get("Event"),
                    event.get("Uniqueid") or event.get("DestUniqueid") or event.get("UniqueID"),
                )

    async def _bus_loop(self):
        while True:
            event = await self.bus_events.get()
            try:
                await self.bus.publish(self.server, event)
            finally:
                self.bus_events.task_done()

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if self.state != "connected":
                continue
            try:
                await _db(services.pbx_server_state_set)(
                    server_id=self.server.pk, state="connected", last_event_at=self.client.last_event_at
                )
            except Exception:
                log.exception("AMI %s: heartbeat not recorded", self.server.name)


class PbxProcess:
    def __init__(self, event_bus: EventBus = bus, agi_scripts: dict | None = None):
        self.bus = event_bus
        self.agi_scripts = agi_scripts
        self.links: list[ServerLink] = []
        self.stopping = asyncio.Event()

    async def run(self, servers=None, *, install_signals=True):
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stopping.set)
        servers = servers if servers is not None else await _db(pbx_servers_enabled)()
        if not servers:
            log.warning("no enabled PBX server: add one in the admin; waiting for SIGTERM")
        for server in servers:
            link = ServerLink(server, self.bus, self.agi_scripts)
            await link.start()
            self.links.append(link)
        await self.stopping.wait()
        log.info("stopping: closing AMI sessions and FastAGI, folding what is queued")
        await asyncio.gather(*(link.stop() for link in self.links))
        await sync_to_async(connections.close_all, thread_sensitive=True)()
