"""The simulator's command line, shared by `manage.py pbxsim` and `python -m pbxsim`.

`python -m pbxsim` starts without Django (about 0.9 s of CPU less a start): the test harness
starts a simulator for most end-to-end tests.
"""

from __future__ import annotations

import asyncio
import logging

from .ami import load_manager_general, load_manager_users
from .dialplan import DialplanError
from .server import ORIGINATE_FAILURE_ORDERS, build_pbx, default_settings, parse_listen, parse_routes, serve


class PbxsimStartError(Exception):
    """The simulator cannot start: a wrong option, an unreadable configuration, a port in use."""


def add_arguments(parser):
    parser.add_argument(
        "--listen", default="127.0.0.1:5038", help="HOST:PORT for AMI (port 0: any free port)"
    )
    parser.add_argument(
        "--dialplan", action="append", required=True, help="extensions.conf file (repeatable)"
    )
    parser.add_argument("--manager-users", required=True, help="manager.conf-style users file")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per real second (waits, rings, limits run N times faster)",
    )
    parser.add_argument("--sounds", help="directory of WAV prompts; their lengths set playback times")
    parser.add_argument("--monitor-dir", default="var/pbxsim/monitor", help="where MixMonitor writes")
    parser.add_argument("--messages-file", help="JSON-lines file MessageSend appends delivered messages to")
    parser.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="TECH=CONTEXT",
        help="run calls to TECH/... in CONTEXT (default: PJSIP/SIP/IAX2 -> pbxsim-trunk)",
    )
    parser.add_argument(
        "--message-technologies",
        default="pjsip",
        help="MessageSend technologies that deliver (comma list; empty: none, as on an "
        "Asterisk without a SIP stack)",
    )
    parser.add_argument(
        "--originate-failure-order",
        choices=ORIGINATE_FAILURE_ORDERS,
        default="response-first",
        help="a failed Originate's OriginateResponse before the ;1's Hangup (as Asterisk 22 "
        "mostly does) or after it (as it also does): apps must decide the same either way",
    )


def run(options):
    """Serve AMI with the parsed `options` (a dict) until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pbxsim").setLevel(logging.INFO)
    try:
        host, port = parse_listen(options["listen"])
        settings = default_settings(
            time_scale=options["time_scale"],
            sounds=options["sounds"],
            monitor_dir=options["monitor_dir"],
            messages_file=options["messages_file"],
            routes=parse_routes(options["route"]),
            message_technologies=options["message_technologies"],
            originate_failure_order=options["originate_failure_order"],
        )
    except ValueError as exc:
        raise PbxsimStartError(str(exc)) from exc
    try:
        pbx = build_pbx(options["dialplan"], settings)
        users = load_manager_users(options["manager_users"])
        general = load_manager_general(options["manager_users"])
        settings.timestamp_events = general.get("timestampevents", "").lower() in {"yes", "true", "on", "1"}
    except (OSError, DialplanError) as exc:
        raise PbxsimStartError(f"cannot load the configuration: {exc}") from exc
    try:
        asyncio.run(serve(host, port, pbx, users))
    except OSError as exc:
        raise PbxsimStartError(f"cannot listen on {options['listen']}: {exc}") from exc
