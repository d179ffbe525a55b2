"""The entry point of the apps that run part of their flow in the pbx process.

An app defines one `PbxApp` subclass in `<app>/pbx.py` and registers an
instance there (`telephony.platform.register(ClickToCall())`); telephony finds
these modules from the installed apps' configs and knows nothing else of them.
For each PBX server it owns, the pbx process gives each app an `AppContext`:

- `ctx.pbx`, the async PBX handle on the server link's own AMI session
  (originate with the claim, hangup, redirect, bridge, set_variable, ...);
- `ctx.db(function, **kwargs)`, a sync service run in a worker thread, in a
  transaction that first proves the process still holds the server's lease (a
  write of an owner that lost it raises LeaseLost and writes nothing);
  `ctx.read(function, **kwargs)` for a read-only one, unfenced (on SQLite a
  fenced transaction takes the write lock);
- `ctx.call_later(seconds, key, payload)`, a timer kept in the database and
  rebuilt when the process starts, delivered to `on_timer`; `ctx.every(seconds,
  coroutine_function)` for periodic work, started from `started`.

The hooks run in the app's own lane, one after the other, in the order of the
events: `started` (after each (re)connect's reconcile of live channels, to
rebuild state from the database and what is really live), `on_call_event`
(typed events from telephony.events, after the fold's commit: the app's own
calls, or all with `all_calls = True`), `on_ami_event` (raw events named in
`ami_events`, or UserEvents named in `user_events`: what typed events do not
carry; "*" for all), `on_timer`, `disconnected` and `stopping`. FastAGI scripts are methods
named in `agi_scripts` (`{"queue": "serve_queue"}`), called with (ctx, call).
A slow or failing app delays its own lane only: never another app, never the fold.
"""

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from django.utils.module_loading import autodiscover_modules

from telephony.events import CallEvent
from telephony.services.timers import app_timer_cancel, app_timer_set, app_timer_take, app_timers_of

log = logging.getLogger(__name__)

_apps: dict[str, "PbxApp"] = {}


def ami_events_read(apps) -> frozenset[str] | None:
    """The names of the raw AMI events the apps read (their ami_events, UserEvent for their
    user_events); None when one reads every event ("*"). The pbx process drops the others unparsed."""
    names = set()
    for app in apps:
        if "*" in app.ami_events:
            return None
        names |= app.ami_events
        if app.user_events:
            names.add("UserEvent")
    return frozenset(names)


class PbxApp:
    name = ""
    all_calls = False
    ami_events: frozenset[str] = frozenset()
    user_events: frozenset[str] = frozenset()
    agi_scripts: dict[str, str] = {}

    async def started(self, ctx: "AppContext"):
        """The server is connected and its live channels reconciled: rebuild state here."""

    async def on_call_event(self, ctx: "AppContext", event: CallEvent):
        """A typed event of one of the app's calls (of every call with all_calls)."""

    async def on_ami_event(self, ctx: "AppContext", event: dict):
        """A raw AMI event named in ami_events, or a UserEvent named in user_events."""

    async def on_timer(self, ctx: "AppContext", key: str, payload: dict):
        """A timer set with ctx.call_later is due."""

    async def disconnected(self, ctx: "AppContext"):
        """The AMI session dropped; actions fail until `started` runs again."""

    async def stopping(self, ctx: "AppContext"):
        """The process is stopping, or gave the server up: timers stay in the database."""

    def wants_call(self, event: CallEvent) -> bool:
        return self.all_calls or event.record.app == self.name

    def wants_ami(self, event: dict) -> bool:
        name = event.get("Event", "")
        if name == "UserEvent":
            return event.get("UserEvent", "") in self.user_events
        return name in self.ami_events or "*" in self.ami_events


def register(app: PbxApp) -> PbxApp:
    if not app.name:
        raise ValueError(f"{type(app).__name__} needs a name")
    if app.name in _apps and _apps[app.name] is not app:
        raise ValueError(f"a pbx app named {app.name!r} is registered twice")
    for script, method in app.agi_scripts.items():
        if not asyncio.iscoroutinefunction(getattr(app, method, None)):
            raise TypeError(f"{app.name}: AGI script {script!r} needs an async method {method!r}")
    _apps[app.name] = app
    return app


def registered_apps() -> list[PbxApp]:
    """The apps of every installed Django app's `pbx` module."""
    autodiscover_modules("pbx")
    return list(_apps.values())


@dataclasses.dataclass
class Lane:
    """One app's queue of work on one server: items run one after the other."""

    name: str
    queue: asyncio.Queue = dataclasses.field(default_factory=asyncio.Queue)
    task: asyncio.Task | None = None

    def start(self):
        self.task = asyncio.create_task(self._run(), name=f"lane {self.name}")

    # Awaited before each item: False drops it (the server's lease is lost); it waits while the
    # lease is in doubt, so no app acts for a server another process may own by now.
    gate: Callable[[], Awaitable[bool]] | None = None

    def put(self, work: Callable[[], Awaitable], what: str):
        self.queue.put_nowait((work, what))

    async def _run(self):
        while True:
            work, what = await self.queue.get()
            try:
                if self.gate is not None and not await self.gate():
                    log.warning("app lane %s: %s dropped with the lease", self.name, what)
                    continue
                await work()
            except Exception:
                log.exception("app lane %s: %s failed", self.name, what)
            finally:
                self.queue.task_done()

    async def stop(self, timeout: float):
        try:
            await asyncio.wait_for(self.queue.join(), timeout)
        except TimeoutError:
            log.warning("app lane %s: %d item(s) left at stop", self.name, self.queue.qsize())
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class AppContext:
    """What one app is given for one PBX server."""

    def __init__(self, app: PbxApp, link, lane: Lane):
        self.app = app
        self.link = link
        self.lane = lane
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._periodic: set[asyncio.Task] = set()

    @property
    def server(self):
        return self.link.server

    @property
    def pbx(self):
        return self.link.handle

    async def db(self, function: Callable, **kwargs):
        # Fenced: an owner frozen past its lease (SIGSTOP, a GC pause) writes nothing once a standby
        # took the server over, whatever it still had in hand (a due timer, a claim, a join).
        return await self.link.db_fenced(function, **kwargs)

    async def read(self, function: Callable, **kwargs):
        """A read-only sync service, unfenced: what it returns is acted on through `db` or the PBX
        handle, both of which the lease guards."""
        return await self.link.process.read(function, **kwargs)

    # -- timers ----------------------------------------------------------------

    async def call_later(self, seconds: float, key: str, payload: dict | None = None):
        """Deliver on_timer(key, payload) in `seconds`; a timer of the same key is replaced.
        Kept in the database first, so a restart of the process rebuilds it."""
        due = await self.db(
            app_timer_set,
            app=self.app.name,
            server_id=self.server.pk,
            key=key,
            seconds=seconds,
            payload=payload or {},
        )
        self._schedule(key, due)

    async def cancel_timer(self, key: str):
        handle = self._timers.pop(key, None)
        if handle:
            handle.cancel()
        await self.db(app_timer_cancel, app=self.app.name, server_id=self.server.pk, key=key)

    def _schedule(self, key: str, due: dt.datetime):
        old = self._timers.pop(key, None)
        if old:
            old.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds())
        self._timers[key] = loop.call_later(delay, self._due, key, due)

    def _due(self, key: str, due: dt.datetime):
        self._timers.pop(key, None)

        async def fire():
            payload = await self.db(
                app_timer_take, app=self.app.name, server_id=self.server.pk, key=key, due_at=due
            )
            if payload is not None:  # else cancelled or replaced meanwhile
                await self.app.on_timer(self, key, payload)

        self.lane.put(fire, f"timer {key}")

    async def rebuild_timers(self):
        for key, due in await self.read(app_timers_of, app=self.app.name, server_id=self.server.pk):
            self._schedule(key, due)

    def every(self, seconds: float, work: Callable[["AppContext"], Awaitable]):
        """Run work(ctx) in the app's lane every `seconds`, until the server is given up."""

        async def tick():
            while True:
                await asyncio.sleep(seconds)
                self.lane.put(lambda: work(self), f"periodic {getattr(work, '__name__', work)}")

        task = asyncio.create_task(tick())
        self._periodic.add(task)

    def cancel_all(self):
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._periodic:
            task.cancel()
        self._periodic.clear()

    def submit(self, work: Callable[[], Awaitable], what: str) -> asyncio.Future:
        """Run `work()` in the app's lane, after what is queued there; the future has its result.
        For code outside the lane (a FastAGI script) that must see and change the app's state in
        order with its events."""
        future = asyncio.get_running_loop().create_future()

        async def run():
            try:
                result = await work()
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                raise
            if not future.done():
                future.set_result(result)

        self.lane.put(run, what)
        return future

    # -- delivery --------------------------------------------------------------

    def deliver_call_event(self, event: CallEvent):
        self.lane.put(lambda: self.app.on_call_event(self, event), type(event).__name__)

    def deliver_ami_event(self, event: dict):
        self.lane.put(lambda: self.app.on_ami_event(self, event), event.get("Event", "?"))

    def deliver(self, hook: str):
        self.lane.put(lambda: getattr(self.app, hook)(self), hook)
