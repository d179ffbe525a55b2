"""The services the click2call benches run on, chosen before Django starts: production's
(PostgreSQL from DATABASE_URL, else the CI's local cluster; Redis from REDIS_URL, else a
redis-server of our own on a free port, stopped at exit) when they can be had, else the
embedded defaults (SQLite, the file cache, kombu's filesystem broker). BENCH_EMBEDDED=1 forces
the embedded ones, to compare like with like on one machine.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from bench.common import CI_DATABASE_URL


def _postgres_reachable(url: str) -> bool:
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=2).close()
    except Exception:  # any failure means "not available": the bench falls back to SQLite
        return False
    return True


def _redis_start() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    atexit.register(lambda: (process.terminate(), process.wait(10)))
    # A bench stopped with SIGTERM (timeout, kill) stops its Redis too: exit through atexit.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    return None


def services_choose() -> str:
    """Set DATABASE_URL and REDIS_URL for this process and its children; a line saying what ran."""
    if os.environ.get("BENCH_EMBEDDED") == "1":
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
    else:
        if not os.environ.get("DATABASE_URL") and _postgres_reachable(CI_DATABASE_URL):
            os.environ["DATABASE_URL"] = CI_DATABASE_URL
        if not os.environ.get("REDIS_URL"):
            url = _redis_start()
            if url:
                os.environ["REDIS_URL"] = url
    database = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postg") else "SQLite"
    cache = "Redis" if os.environ.get("REDIS_URL") else "files (embedded)"
    configuration = "production" if (database, cache) == ("PostgreSQL", "Redis") else "embedded"
    return f"services: {configuration} ({database}; cache and broker: {cache})"


def bench_database_name(connection, tmp_dir) -> None:
    """A database of the bench's own, never the test database another run may be using."""
    if connection.vendor == "sqlite":
        connection.settings_dict["TEST"]["NAME"] = str(tmp_dir / "bench.sqlite3")
    else:
        connection.settings_dict["TEST"]["NAME"] = f"bench_click2call_{os.getpid()}"
