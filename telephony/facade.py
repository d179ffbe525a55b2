"""The sync way to Asterisk for views and Celery tasks.

How it reaches the PBX: each OS process (a gunicorn or Celery worker) keeps one
persistent AMI session per PBX server, logged in once, with events off, in a
background thread running its own asyncio loop. Calls from any thread of that
process are handed to that loop and wait for Asterisk's answer. The pbx
process, which has events on, sees the same calls' events (OriginateResponse,
Hangup, ...) and folds them into call records and domain state; the facade only
acts. After a fork (Celery's prefork pool) the child opens its own session.

Originate claims the call record (unique per ChannelId) *before* sending, so a
retried task with the same ChannelId cannot ring anybody twice.
"""

import asyncio
import concurrent.futures
import logging
import os
import re
import threading
import time
import uuid

from django.utils import timezone
from panoramisk.utils import IdGenerator

from telephony import services
from telephony.ami import (
    AmiClient,
    AmiConnectionLost,
    AmiEndpoint,
    AmiError,
    AmiNotConnected,
    OriginateOutcome,
)
from telephony.models import CallRecord, DialRoute, PbxServer

CONNECT_TIMEOUT = 5.0
ACTION_TIMEOUT = 10.0
ROUTE_CACHE_SECONDS = 5.0
DIALABLE = re.compile(r"\+?[0-9*#]+")

log = logging.getLogger(__name__)

__all__ = ["AmiConnectionLost", "AmiError", "PbxFacade", "facade"]


class PbxFacade:
    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[tuple[int, bool], AmiClient] = {}
        self._routes: dict[tuple[int, str], tuple[DialRoute | None, float]] = {}

    # -- plumbing --------------------------------------------------------------

    def _ensure_loop(self):
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._clients = {}
                # panoramisk draws ActionIDs from one uuid set at import: a forked child needs its own.
                IdGenerator.reset(uid=str(uuid.uuid4()))
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

    async def _client(self, server: PbxServer, events: bool) -> AmiClient:
        key = (server.pk, events)
        client = self._clients.get(key)
        if client is None:
            client = AmiClient(
                AmiEndpoint(
                    server.name, server.ami_host, server.ami_port, server.ami_username, server.ami_secret
                ),
                events=events,
            )
            self._clients[key] = client
            client.start()
        if not await client.wait_connected(CONNECT_TIMEOUT):
            raise AmiNotConnected(f"AMI {server.name} is not reachable")
        return client

    def _dial_string(self, server: PbxServer, number: str, route: str) -> str:
        # Routes change rarely; a few seconds' cache saves a query on every call.
        key = (server.pk, route)
        cached, expires = self._routes.get(key, (None, 0.0))
        if cached is None or time.monotonic() >= expires:
            try:
                cached = DialRoute.objects.get(server=server, name=route)
            except DialRoute.DoesNotExist:
                raise ValueError(f"PBX server {server.name} has no dial route {route!r}") from None
            self._routes[key] = (cached, time.monotonic() + ROUTE_CACHE_SECONDS)
        return cached.dial_string(number)

    def _action(self, server: PbxServer, action: dict):
        async def send():
            client = await self._client(server, events=False)
            return await client.send_checked(action, timeout=ACTION_TIMEOUT)

        return self._run(send(), CONNECT_TIMEOUT + ACTION_TIMEOUT)

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

    def originate(
        self,
        *,
        server: PbxServer,
        channel_id: str,
        number: str = "",
        channel: str = "",
        route: str = "default",
        context: str = "",
        exten: str = "s",
        priority: int = 1,
        application: str = "",
        data: str = "",
        variables: dict | None = None,
        caller_id: str = "",
        timeout: int = 30,
        account: str = "",
        company=None,
        app: str = "",
        app_ref: str = "",
        wait: bool = False,
    ) -> OriginateOutcome | None:
        """Ring `number` through the server's dial route (or the explicit `channel`) and connect the answered
        call to context/exten/priority or to application/data.

        Returns once Asterisk has queued the call, or with wait=True once it has an outcome. Raises
        services.OriginateAlreadyClaimed if this ChannelId was dialed before: nobody is rung twice.
        """
        if bool(context) == bool(application):
            raise ValueError("give either context (and exten, priority) or application")
        if not channel and not DIALABLE.fullmatch(number):
            raise ValueError(f"{number!r} is not a number to dial (digits, * and #, an optional leading +)")
        dial = channel or self._dial_string(server, number, route)
        record = services.call_record_claim(
            server=server,
            uniqueid=channel_id,
            company=company,
            app=app,
            app_ref=app_ref,
            caller=_caller_number(caller_id or server.outbound_caller_id),
            callee=(number or dial)[:80],
        )
        action = {
            "Channel": dial,
            "ChannelId": channel_id,
            "OtherChannelId": f"{channel_id};2",
            "Timeout": str(timeout * 1000),
            "CallerID": caller_id or server.outbound_caller_id,
            "Variable": [f"{k}={v}" for k, v in (variables or {}).items()],
        }
        if account:
            action["Account"] = account
        if context:
            action |= {"Context": context, "Exten": exten, "Priority": str(priority)}
        else:
            action |= {"Application": application, "Data": data}
        if not action["Variable"]:
            del action["Variable"]
        if not action["CallerID"]:
            del action["CallerID"]

        async def send():
            client = await self._client(server, events=wait)
            if wait:
                return await client.originate(action, outcome_timeout=timeout + ACTION_TIMEOUT)
            await client.originate_queued(action, timeout=ACTION_TIMEOUT)
            return None

        try:
            return self._run(send(), CONNECT_TIMEOUT + timeout + ACTION_TIMEOUT)
        except AmiConnectionLost as exc:
            if not isinstance(exc, AmiNotConnected):
                # Sent, but the answer was lost: the call may be ringing. The record stays open for
                # the pbx process (its events, or the reconcile after a reconnect) to settle.
                log.warning("Originate %s on %s: outcome unknown (%s)", channel_id, server.name, exc)
                raise
            self._originate_failed(record, exc)
            raise
        except (AmiError, ValueError) as exc:
            self._originate_failed(record, exc)
            raise

    def _originate_failed(self, record: CallRecord, exc: Exception):
        """Asterisk surely did not take the call: the record ends here, FAILED."""
        now = timezone.now()
        CallRecord.objects.filter(pk=record.pk, ended_at__isnull=True).update(
            started_at=now,
            ended_at=now,
            disposition=CallRecord.Disposition.FAILED,
            hangup_cause_text=str(exc)[:80],
        )

    def hangup(self, *, server: PbxServer, channel: str, cause: int = 16):
        return self._action(server, {"Action": "Hangup", "Channel": channel, "Cause": str(cause)})

    def redirect(self, *, server: PbxServer, channel: str, context: str, exten: str = "s", priority: int = 1):
        return self._action(
            server,
            {
                "Action": "Redirect",
                "Channel": channel,
                "Context": context,
                "Exten": exten,
                "Priority": str(priority),
            },
        )

    def bridge(self, *, server: PbxServer, channel1: str, channel2: str):
        return self._action(
            server, {"Action": "Bridge", "Channel1": channel1, "Channel2": channel2, "Tone": "no"}
        )

    def absolute_timeout(self, *, server: PbxServer, channel: str, seconds: int):
        return self._action(
            server, {"Action": "AbsoluteTimeout", "Channel": channel, "Timeout": str(seconds)}
        )

    def set_variable(self, *, server: PbxServer, channel: str, name: str, value: str):
        return self._action(
            server, {"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value}
        )

    def get_variable(self, *, server: PbxServer, channel: str, name: str) -> str:
        response = self._action(server, {"Action": "Getvar", "Channel": channel, "Variable": name})
        return response.get("Value", "")

    def live_channels(self, *, server: PbxServer) -> list[dict]:
        """The channels up on the PBX now (CoreShowChannels): name, Uniqueid, Linkedid, state, application."""
        frames = self._action(server, {"Action": "CoreShowChannels"})
        return [dict(f) for f in frames if f.get("Event") == "CoreShowChannel"]

    def send_message(self, *, server: PbxServer, to: str, body: str, sender: str = ""):
        action = {"Action": "MessageSend", "To": to, "Body": body}
        if sender:
            action["From"] = sender
        return self._action(server, action)


def _caller_number(caller_id: str) -> str:
    if "<" in caller_id and caller_id.endswith(">"):
        return caller_id.rsplit("<", 1)[1][:-1]
    return caller_id


facade = PbxFacade()
