"""Running the simulator: load the configuration, serve AMI until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from .ami import AmiServer, ManagerUser
from .core import PBX, Settings
from .dialplan import Dialplan

log = logging.getLogger("pbxsim")


def build_pbx(dialplan_files: list[str], settings: Settings) -> PBX:
    dialplan = Dialplan()
    for path in dialplan_files:
        dialplan.load(path)
    log.info("dialplan loaded: %d contexts from %s", len(dialplan.contexts), ", ".join(dialplan_files))
    return PBX(dialplan, settings)


async def serve(
    host: str, port: int, pbx: PBX, users: dict[str, ManagerUser], stop: asyncio.Event | None = None
) -> None:
    server = AmiServer(pbx, users)
    _, bound_port = await server.start(host, port)
    log.info("listening on %s:%s", host, bound_port)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: %d channels up", len(pbx.channels))
    await server.stop()
    await pbx.shutdown()


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"--listen wants HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_routes(items: list[str]) -> dict[str, str]:
    routes = {}
    for item in items:
        tech, sep, context = item.partition("=")
        if not sep:
            raise ValueError(f"--route wants TECH=CONTEXT, got {item!r}")
        routes[tech.strip().upper()] = context.strip()
    return routes


ORIGINATE_FAILURE_ORDERS = ("response-first", "hangup-first")


def default_settings(
    time_scale: float = 1.0,
    sounds: str | None = None,
    monitor_dir: str = "var/pbxsim/monitor",
    messages_file: str | None = None,
    routes: dict[str, str] | None = None,
    message_technologies: str = "pjsip",
    originate_failure_order: str = "response-first",
) -> Settings:
    if time_scale <= 0:
        raise ValueError("--time-scale must be positive")
    if originate_failure_order not in ORIGINATE_FAILURE_ORDERS:
        raise ValueError(f"--originate-failure-order must be one of {', '.join(ORIGINATE_FAILURE_ORDERS)}")
    trunk_routes = {tech: "pbxsim-trunk" for tech in ("PJSIP", "SIP", "IAX2", "DAHDI")}
    trunk_routes.update(routes or {})
    return Settings(
        time_scale=time_scale,
        sounds_dir=Path(sounds) if sounds else None,
        monitor_dir=Path(monitor_dir),
        messages_file=Path(messages_file) if messages_file else None,
        routes=trunk_routes,
        message_technologies=frozenset(
            t.strip().lower() for t in message_technologies.split(",") if t.strip()
        ),
        originate_failure_order=originate_failure_order,
    )
