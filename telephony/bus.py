"""The event bus of the pbx process.

Apps subscribe from their AppConfig.ready(), so telephony imports none of them:

    from telephony.bus import bus
    bus.on("Hangup", handle_hangup)               # any AMI event, by name
    bus.on_user_event("C2CResult", handle_result)  # UserEvent(C2CResult,...) from the dialplan

Handlers are async, take (server, event) and must not touch the ORM directly
(call a sync service through sync_to_async). A handler that raises is logged;
the others still run.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Handler = Callable[[object, dict], Awaitable[None]]


class EventBus:
    def __init__(self):
        self._by_event: dict[str, list[Handler]] = defaultdict(list)
        self._by_user_event: dict[str, list[Handler]] = defaultdict(list)

    def _check(self, handler):
        if not asyncio.iscoroutinefunction(handler):
            raise TypeError(f"{handler!r} must be an async function")

    def on(self, event: str, handler: Handler):
        self._check(handler)
        self._by_event[event.lower()].append(handler)

    def on_user_event(self, name: str, handler: Handler):
        self._check(handler)
        self._by_user_event[name.lower()].append(handler)

    def handlers_for(self, event: dict) -> list[Handler]:
        name = event.get("Event", "").lower()
        handlers = self._by_event.get(name, []) + self._by_event.get("*", [])
        if name == "userevent":
            handlers = handlers + self._by_user_event.get(event.get("UserEvent", "").lower(), [])
        return handlers

    async def publish(self, server, event: dict):
        for handler in self.handlers_for(event):
            try:
                await handler(server, event)
            except Exception:
                log.exception(
                    "bus handler %s failed on %s",
                    getattr(handler, "__qualname__", handler),
                    event.get("Event"),
                )

    def clear(self):
        self._by_event.clear()
        self._by_user_event.clear()


bus = EventBus()
