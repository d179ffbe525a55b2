"""The sync way to Asterisk for views and Celery tasks: a thin wrapper of telephony.handle.

How it reaches the PBX: each OS process (a gunicorn or Celery worker) keeps one
persistent AMI session per PBX server, logged in once, with events off, in a
background thread running its own asyncio loop. Every action is the
`PbxHandle`'s, run on that loop. Originate is `originate_flow`, driven here in
the caller's thread: its database steps (the dial route, the claim, marking it
sent) run right there, and only the AMI send hops to the loop. After a fork
(Celery's prefork pool) the child opens its own session.

With wait=True, originate returns the OriginateOutcome once the pbx process
(which has events on) has folded the OriginateResponse into the call record: no
second, events-on session per worker. So waiting needs a running pbx process.
The pbx process announces each outcome it folds (telephony.services.originate:
a NOTIFY delivered at the fold's commit on PostgreSQL, a Redis publish after it
where Redis is the broker), and one listener thread per OS process wakes the
waits; the record stays the truth, re-read at a wake-up and every
OUTCOME_FALLBACK seconds should one be lost. With the embedded defaults
(SQLite, the file broker) nothing announces: the wait polls the record.
"""

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Generator, Iterator

from django.conf import settings
from django.db import connection

from telephony.ami import (
    AmiClient,
    AmiConnectionLost,
    AmiEndpoint,
    AmiError,
    AmiNotConnected,
    OriginateOutcome,
    OriginateOutcomeUnknown,
    reset_action_ids,
)
from telephony.handle import ACTION_TIMEOUT, Db, OriginateRequest, PbxHandle, originate_flow
from telephony.models import CallRecord, PbxServer
from telephony.services.originate import OUTCOME_CHANNEL, outcome_transport

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
# A wait woken by the pbx process's announcement still re-reads the record this often: an
# announcement lost (the listener reconnecting, Redis restarting) delays an outcome, never loses it.
OUTCOME_FALLBACK = 1.0
# The listener's look at its stop flag, and its pause before connecting again after an error.
LISTEN_TICK = 1.0
# The pbx process folds an outcome tens of milliseconds after Asterisk sends it: poll finely at
# first; a call that rings for seconds is polled less and less often, not a hundred times a second.
OUTCOME_POLL_FIRST = 0.002
OUTCOME_POLL_FINE_FOR = 0.1
OUTCOME_POLL_MAX = 0.25

__all__ = ["AmiConnectionLost", "AmiError", "OriginateOutcomeUnknown", "PbxFacade", "facade"]


@dataclasses.dataclass
class _ListenerSignals:
    """One listener thread's flags (a new thread after a stop or a fork gets new ones)."""

    listening: threading.Event = dataclasses.field(default_factory=threading.Event)
    tried: threading.Event = dataclasses.field(default_factory=threading.Event)  # connected, or failed
    stopping: threading.Event = dataclasses.field(default_factory=threading.Event)


class OutcomeWakeups:
    """Wake-ups for this process's waits on Originate outcomes: one thread that LISTENs on a psycopg
    connection of its own (PostgreSQL) or subscribes on the broker's Redis, and sets the Event of
    every wait on a record it hears of. `listening` is False with the embedded defaults (the waits
    poll), and while the listener is not (yet, or again) connected."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._waits: dict[int, set[threading.Event]] = {}
        self._signals = _ListenerSignals()
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        return self._signals.listening.is_set()

    def start(self):
        """Start listening (once per OS process), in the caller's thread's database settings."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._waits = {}
            self._signals = _ListenerSignals()
            self._thread = None
            transport = outcome_transport()
            if transport == "postgresql":
                params = connection.get_connection_params()
                for key in ("cursor_factory", "context"):  # Django's own, for its cursors
                    params.pop(key, None)
                listen, target = self._listen_postgresql, params
            elif transport == "redis":
                listen, target = self._listen_redis, settings.CELERY_BROKER_URL
            else:
                return
            self._thread = threading.Thread(
                target=self._run,
                args=(listen, target, self._signals),
                name="pbx-outcomes",
                daemon=True,
            )
            self._thread.start()

    def stop(self):
        with self._lock:
            if self._pid != os.getpid():
                return
            self._pid = None
            thread, self._thread = self._thread, None
            self._signals.stopping.set()
        if thread is not None:
            thread.join(LISTEN_TICK * 3)

    @contextlib.contextmanager
    def watching(self, record_id: int) -> Iterator[threading.Event]:
        """An Event set whenever the record's outcome may have been folded. Registered before the
        caller first reads the record, and the listener subscribed by then (or `listening` False):
        an outcome committed after that read is always heard."""
        self.start()
        woken = threading.Event()
        with self._lock:
            self._waits.setdefault(record_id, set()).add(woken)
        try:
            if self._thread is not None:
                # The first wait of the process, only: a listener that cannot connect (a pooler
                # that does not pass LISTEN on) leaves the waits polling, not each one stalled.
                self._signals.tried.wait(CONNECT_TIMEOUT)
            yield woken
        finally:
            with self._lock:
                waits = self._waits.get(record_id)
                if waits is not None:
                    waits.discard(woken)
                    if not waits:
                        del self._waits[record_id]

    def _wake(self, payload: str | None = None):
        """Set the waits of the records in `payload` (ids, comma separated), or of all of them."""
        with self._lock:
            if payload is None:
                woken = [event for events in self._waits.values() for event in events]
            else:
                ids = {int(part) for part in payload.split(",") if part.strip().isdigit()}
                woken = [event for pk in ids for event in self._waits.get(pk, ())]
        for event in woken:
            event.set()

    def _run(self, listen, target, signals: _ListenerSignals):
        while not signals.stopping.is_set():
            try:
                listen(target, signals)
            except Exception as exc:
                log.warning("Originate outcomes: listener lost (%s), the waits poll until it is back", exc)
            signals.listening.clear()
            signals.tried.set()
            signals.stopping.wait(LISTEN_TICK)

    def _up(self, signals: _ListenerSignals):
        signals.listening.set()
        signals.tried.set()
        self._wake()  # what was announced while it was not listening: every wait reads again

    def _listen_postgresql(self, params: dict, signals: _ListenerSignals):
        import psycopg

        with psycopg.connect(**params, autocommit=True) as listener:
            listener.execute(f"LISTEN {OUTCOME_CHANNEL}")
            self._up(signals)
            while not signals.stopping.is_set():
                for note in listener.notifies(timeout=LISTEN_TICK):
                    self._wake(note.payload)

    def _listen_redis(self, url: str, signals: _ListenerSignals):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)
        subscription = client.pubsub()
        try:
            subscription.subscribe(OUTCOME_CHANNEL)
            while not signals.stopping.is_set():
                message = subscription.get_message(timeout=LISTEN_TICK)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self._up(signals)
                elif message["type"] == "message":
                    self._wake(message["data"].decode())
        finally:
            subscription.close()
            client.close()


class PbxFacade:
    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[int, AmiClient] = {}
        self._wakeups = OutcomeWakeups()

    # -- plumbing --------------------------------------------------------------

    def _ensure_loop(self):
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._clients = {}
                reset_action_ids()
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="pbx-facade", daemon=True).start()
        return self._loop

    def _run(self, coroutine, timeout: float):
        future = asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop())
        try:
            return future.result(timeout + 1)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise AmiConnectionLost(f"no answer from the PBX within {timeout:.0f} s") from None

    async def _client(self, server: PbxServer) -> AmiClient:
        client = self._clients.get(server.pk)
        if client is None:
            client = AmiClient(
                AmiEndpoint(
                    server.name, server.ami_host, server.ami_port, server.ami_username, server.ami_secret
                ),
                events=False,
            )
            self._clients[server.pk] = client
            client.start()
        if not await client.wait_connected(CONNECT_TIMEOUT):
            raise AmiNotConnected(f"AMI {server.name} is not reachable")
        return client

    def _call(self, server: PbxServer, action: str, **kwargs):
        async def run():
            handle = PbxHandle(server, await self._client(server))
            return await getattr(handle, action)(**kwargs)

        return self._run(run(), CONNECT_TIMEOUT + ACTION_TIMEOUT)

    def close(self):
        """Log out of every session of this process and stop listening for outcomes (tests, benchmarks)."""
        self._wakeups.stop()
        if self._loop is None or self._pid != os.getpid():
            return

        async def close_all():
            for client in self._clients.values():
                client.close()
            self._clients.clear()

        self._run(close_all(), 5)

    # -- actions ---------------------------------------------------------------

    def originate(self, *, server: PbxServer, wait: bool = False, **kwargs) -> OriginateOutcome | None:
        """Ring `number` through the server's dial route (or the explicit `channel`) and connect the answered
        call to context/exten/priority or to application/data (the arguments of OriginateRequest).

        Returns once Asterisk has queued the call, or with wait=True once it has an outcome. Raises
        OriginateAlreadyClaimed if this ChannelId was sent before: nobody is rung twice.
        """
        request = OriginateRequest(server=server, **kwargs)
        if wait:
            self._wakeups.start()  # its connection made while the Originate goes out, the first time
        record = self._drive(server, originate_flow(request))
        if not wait:
            return None
        return self._outcome(record, request.timeout + ACTION_TIMEOUT)

    def _drive(self, server: PbxServer, flow: Generator):
        value, error = None, None
        while True:
            try:
                step = flow.throw(error) if error else flow.send(value)
            except StopIteration as done:
                return done.value
            value, error = None, None
            try:
                if isinstance(step, Db):
                    value = step.function(**step.kwargs)
                else:
                    value = self._send(server, step.action)
            except Exception as exc:
                error = exc

    def _send(self, server: PbxServer, action: dict):
        async def send():
            client = await self._client(server)
            return await client.originate_queued(action, timeout=ACTION_TIMEOUT)

        return self._run(send(), CONNECT_TIMEOUT + ACTION_TIMEOUT)

    def _outcome(self, record: CallRecord, timeout: float) -> OriginateOutcome:
        """The OriginateResponse, as the pbx process folded it into the record: read when the pbx
        process announces it (and every OUTCOME_FALLBACK seconds), or polled where nothing does."""
        start = time.monotonic()
        deadline = start + timeout
        rows = CallRecord.objects.filter(pk=record.pk).values_list("originate_reason", "channel")
        pause = OUTCOME_POLL_FIRST
        with self._wakeups.watching(record.pk) as woken:
            while True:
                woken.clear()
                reason, channel = rows.get()
                if reason is not None:
                    return OriginateOutcome.of(record.uniqueid, reason, channel)
                now = time.monotonic()
                if now >= deadline:
                    break
                if self._wakeups.listening:
                    woken.wait(min(OUTCOME_FALLBACK, deadline - now))
                    continue
                woken.wait(min(pause, deadline - now))
                if now - start >= OUTCOME_POLL_FINE_FOR:
                    pause = min(pause * 1.5, OUTCOME_POLL_MAX)
        raise AmiConnectionLost(
            f"Originate {record.uniqueid}: no outcome within {timeout:.0f} s (is pbx running?)"
        )

    def hangup(self, *, server: PbxServer, channel: str, cause: int = 16):
        return self._call(server, "hangup", channel=channel, cause=cause)

    def redirect(self, *, server: PbxServer, channel: str, context: str, exten: str = "s", priority: int = 1):
        return self._call(
            server, "redirect", channel=channel, context=context, exten=exten, priority=priority
        )

    def bridge(self, *, server: PbxServer, channel1: str, channel2: str):
        return self._call(server, "bridge", channel1=channel1, channel2=channel2)

    def absolute_timeout(self, *, server: PbxServer, channel: str, seconds: int):
        return self._call(server, "absolute_timeout", channel=channel, seconds=seconds)

    def set_variable(self, *, server: PbxServer, channel: str, name: str, value: str):
        return self._call(server, "set_variable", channel=channel, name=name, value=value)

    def get_variable(self, *, server: PbxServer, channel: str, name: str) -> str:
        return self._call(server, "get_variable", channel=channel, name=name)

    def live_channels(self, *, server: PbxServer) -> list[dict]:
        return self._call(server, "live_channels")

    def send_message(self, *, server: PbxServer, to: str, body: str, sender: str = ""):
        return self._call(server, "message_send", to=to, body=body, sender=sender)


facade = PbxFacade()
