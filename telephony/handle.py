"""Acting on a PBX: the one implementation behind the pbx process's handle and the sync facade.

`PbxHandle` is async and runs on an AMI session's own loop: in the pbx process
on the server link's session (no thread hop), in the facade on that process's
own session. Originate is a flow of steps (`originate_flow`) that yields each
database write and the AMI send to a driver: `PbxHandle.originate` drives it
with awaits, the facade drives it synchronously in the caller's thread. So the
claim, the dial route, the checks of variables and the handling of every error
are written once.
"""

import asyncio
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Generator

from telephony.ami import AmiClient, AmiConnectionLost, AmiError, AmiNotConnected, OriginateOutcome
from telephony.models import CallRecord, DialRoute, PbxServer, has_control_character
from telephony.services import originate as originate_services

ACTION_TIMEOUT = 10.0
ROUTE_CACHE_SECONDS = 5.0
DIALABLE = re.compile(r"\+?[0-9*#]{1,40}")
CHANNEL_ID = re.compile(r"[A-Za-z0-9._:@-]{1,100}")
VARIABLE_NAME = re.compile(r"_{0,2}[A-Za-z][A-Za-z0-9_]{0,79}")
# Asterisk reads a manager line of at most 1 KiB; a longer one is cut and the Originate runs
# with what is left, or not at all.
MAX_VARIABLE = 900
MAX_VARIABLES = 32
MAX_TEXT = 200


@dataclasses.dataclass(frozen=True)
class Db:
    """A step of a flow: call this sync service (in a worker thread, or in the caller's)."""

    function: Callable
    kwargs: dict


@dataclasses.dataclass(frozen=True)
class Send:
    """A step of a flow: send this Originate (Async) and return when Asterisk has queued it."""

    action: dict


@dataclasses.dataclass(frozen=True)
class OriginateRequest:
    server: PbxServer
    channel_id: str
    number: str = ""
    channel: str = ""
    route: str = "default"
    context: str = ""
    exten: str = "s"
    priority: int = 1
    application: str = ""
    data: str = ""
    variables: dict | None = None
    caller_id: str = ""
    timeout: int = 30
    account: str = ""
    company: object = None
    app: str = ""
    app_ref: str = ""


def _check_text(name: str, value: str, size: int = MAX_TEXT):
    if len(value) > size:
        raise ValueError(f"{name} is longer than {size} characters")
    if has_control_character(value):
        raise ValueError(f"{name} holds a line break or another control character")


def originate_check(request: OriginateRequest):
    """Refuse, before anything is claimed, what Asterisk would misread or refuse."""
    if bool(request.context) == bool(request.application):
        raise ValueError("give either context (and exten, priority) or application")
    if not CHANNEL_ID.fullmatch(request.channel_id):
        raise ValueError(f"{request.channel_id!r} is no ChannelId (1-100 letters, digits and ._:@-)")
    if not request.channel and not DIALABLE.fullmatch(request.number):
        raise ValueError(
            f"{request.number!r} is not a number to dial (digits, * and #, an optional leading +)"
        )
    if not 1 <= request.timeout <= 3600:
        raise ValueError("timeout must be 1 to 3600 seconds")
    for name in ("channel", "context", "exten", "application", "caller_id", "account", "app", "app_ref"):
        _check_text(name, getattr(request, name))
    _check_text("data", request.data, MAX_VARIABLE)
    variables = request.variables or {}
    if len(variables) > MAX_VARIABLES:
        raise ValueError(f"at most {MAX_VARIABLES} variables")
    for key, value in variables.items():
        if not VARIABLE_NAME.fullmatch(str(key)):
            raise ValueError(f"{key!r} is no channel variable name")
        text = str(value)
        # Asterisk splits a Variable header on commas too: a comma would set another variable.
        if "," in text:
            raise ValueError(f"variable {key}: a comma in the value would set another variable")
        _check_text(f"variable {key}", f"{key}={text}", MAX_VARIABLE)


_routes: dict[tuple[int, str], tuple[DialRoute, float]] = {}


def dial_string_cached(*, server: PbxServer, number: str, route: str) -> str | None:
    """The dial string from the cache alone (None when it must be read): no thread hop to the
    database for the route of a call placed a moment ago."""
    cached = _routes.get((server.pk, route))
    if cached is None or time.monotonic() >= cached[1]:
        return None
    return cached[0].dial_string(number)


def dial_string(*, server: PbxServer, number: str, route: str) -> str:
    """The route's dial string; routes change rarely, so a few seconds' cache saves a query a call."""
    key = (server.pk, route)
    cached = _routes.get(key)
    if cached is None or time.monotonic() >= cached[1]:
        try:
            found = DialRoute.objects.get(server=server, name=route)
        except DialRoute.DoesNotExist:
            raise ValueError(f"PBX server {server.name} has no dial route {route!r}") from None
        cached = _routes[key] = (found, time.monotonic() + ROUTE_CACHE_SECONDS)
    return cached[0].dial_string(number)


def _caller_number(caller_id: str) -> str:
    if "<" in caller_id and caller_id.endswith(">"):
        return caller_id.rsplit("<", 1)[1][:-1]
    return caller_id


def originate_flow(request: OriginateRequest) -> Generator[Db | Send, object, CallRecord]:
    """Check, claim and mark sent (one commit), send; settle the record on every error. Returns the
    claimed record.

    Raises OriginateAlreadyClaimed when this ChannelId was sent before: nobody is rung twice. A
    claim that could not be sent (the PBX was not connected) is claimed again, for a retry to send.
    """
    originate_check(request)
    server = request.server
    where = {"server": server, "number": request.number, "route": request.route}
    dial = request.channel or dial_string_cached(**where) or (yield Db(dial_string, where))
    caller_id = request.caller_id or server.outbound_caller_id
    action = {
        "Channel": dial,
        "ChannelId": request.channel_id,
        "OtherChannelId": f"{request.channel_id};2",
        "Timeout": str(request.timeout * 1000),
    }
    if caller_id:
        action["CallerID"] = caller_id
    if request.variables:
        action["Variable"] = [f"{k}={v}" for k, v in request.variables.items()]
    if request.account:
        action["Account"] = request.account
    if request.context:
        action |= {"Context": request.context, "Exten": request.exten, "Priority": str(request.priority)}
    else:
        action |= {"Application": request.application, "Data": request.data}
    # The one durable write before the Originate: claimed and marked sent together. Killed before
    # it commits, nothing was claimed and the retry sends; killed after, the record is `sent` and
    # the retry gets OriginateAlreadyClaimed (the reconcile ends it if the Originate never left).
    record = yield Db(
        originate_services.call_record_claim,
        {
            "server": server,
            "uniqueid": request.channel_id,
            "company": request.company,
            "app": request.app,
            "app_ref": request.app_ref,
            "caller": _caller_number(caller_id)[:80],
            "callee": (request.number or dial)[:80],
            "sent": True,
        },
    )
    try:
        yield Send(action)
    except AmiNotConnected:
        yield Db(originate_services.call_record_unsent, {"record_id": record.pk})
        raise
    except AmiError as exc:
        yield Db(originate_services.call_record_refused, {"record_id": record.pk, "reason": str(exc)})
        raise
    # AmiConnectionLost after sending: the call may be ringing. The record stays sent, for the
    # PBX's events (or the periodic reconcile) to settle.
    return record


class PbxHandle:
    """Actions on one PBX server through one AMI session, for code running on that session's loop.

    `db` runs a sync service off the loop (`await db(function, **kwargs)`); `outcomes` waits for an
    Originate's OriginateResponse (`await outcomes(channel_id, timeout)`), in the pbx process as the
    event arrives (the typed OriginateResult follows once it is folded).
    """

    def __init__(
        self,
        server: PbxServer,
        client: AmiClient,
        *,
        db: Callable[..., Awaitable] | None = None,
        outcomes: Callable[[str, float], Awaitable[OriginateOutcome]] | None = None,
    ):
        self.server = server
        self.client = client
        self.db = db
        self.outcomes = outcomes

    async def originate(self, *, wait: bool = False, **kwargs) -> CallRecord | OriginateOutcome:
        """Ring a number (through the server's dial route) or an explicit channel, and connect the
        answered call to context/exten/priority or to application/data. Returns the claimed record
        once Asterisk has queued the call, or with wait=True the OriginateOutcome."""
        request = OriginateRequest(server=self.server, **kwargs)
        if self.db is None:
            raise ValueError("this handle has no database runner to claim the call with")
        waiting = None
        if wait:
            if self.outcomes is None:
                raise ValueError("this handle cannot wait for outcomes")
            waiting = asyncio.ensure_future(
                self.outcomes(request.channel_id, request.timeout + ACTION_TIMEOUT)
            )
        try:
            record = await self._drive(originate_flow(request))
        except BaseException:
            if waiting:
                waiting.cancel()
            raise
        return await waiting if waiting else record

    async def _drive(self, flow: Generator):
        value, error = None, None
        while True:
            try:
                step = flow.throw(error) if error else flow.send(value)
            except StopIteration as done:
                return done.value
            value, error = None, None
            try:
                if isinstance(step, Db):
                    value = await self.db(step.function, **step.kwargs)
                else:
                    value = await self.client.originate_queued(step.action, timeout=ACTION_TIMEOUT)
            except Exception as exc:
                error = exc

    async def action(self, action: dict):
        return await self.client.send_checked(action, timeout=ACTION_TIMEOUT)

    async def hangup(self, *, channel: str, cause: int = 16):
        return await self.action({"Action": "Hangup", "Channel": channel, "Cause": str(cause)})

    async def redirect(self, *, channel: str, context: str, exten: str = "s", priority: int = 1):
        return await self.action(
            {
                "Action": "Redirect",
                "Channel": channel,
                "Context": context,
                "Exten": exten,
                "Priority": str(priority),
            }
        )

    async def bridge(self, *, channel1: str, channel2: str):
        return await self.action(
            {"Action": "Bridge", "Channel1": channel1, "Channel2": channel2, "Tone": "no"}
        )

    async def absolute_timeout(self, *, channel: str, seconds: int):
        return await self.action({"Action": "AbsoluteTimeout", "Channel": channel, "Timeout": str(seconds)})

    async def set_variable(self, *, channel: str, name: str, value: str):
        if not VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is no channel variable name")
        return await self.action({"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value})

    async def get_variable(self, *, channel: str, name: str) -> str:
        response = await self.action({"Action": "Getvar", "Channel": channel, "Variable": name})
        return response.get("Value", "")

    async def live_channels(self) -> list[dict]:
        """The channels up on the PBX now (CoreShowChannels): name, Uniqueid, Linkedid, state, application."""
        frames = await self.action({"Action": "CoreShowChannels"})
        return [dict(f) for f in frames if f.get("Event") == "CoreShowChannel"]

    async def message_send(self, *, to: str, body: str, sender: str = ""):
        action = {"Action": "MessageSend", "To": to, "Body": body}
        if sender:
            action["From"] = sender
        return await self.action(action)


__all__ = ["AmiConnectionLost", "AmiError", "AmiNotConnected", "PbxHandle", "originate_flow"]
