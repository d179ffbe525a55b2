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
"""

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import Generator

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

CONNECT_TIMEOUT = 5.0
# The pbx process folds an outcome tens of milliseconds after Asterisk sends it: poll finely at
# first; a call that rings for seconds is polled less and less often, not a hundred times a second.
OUTCOME_POLL_FIRST = 0.002
OUTCOME_POLL_FINE_FOR = 0.1
OUTCOME_POLL_MAX = 0.25

__all__ = ["AmiConnectionLost", "AmiError", "OriginateOutcomeUnknown", "PbxFacade", "facade"]


class PbxFacade:
    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[int, AmiClient] = {}

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
        """Log out of every session of this process (tests, benchmarks)."""
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
        """The OriginateResponse, as the pbx process folded it into the record."""
        start = time.monotonic()
        deadline = start + timeout
        rows = CallRecord.objects.filter(pk=record.pk).values_list("originate_reason", "channel")
        pause = OUTCOME_POLL_FIRST
        while time.monotonic() < deadline:
            reason, channel = rows.get()
            if reason is not None:
                return OriginateOutcome.of(record.uniqueid, reason, channel)
            time.sleep(pause)
            if time.monotonic() - start >= OUTCOME_POLL_FINE_FOR:
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
