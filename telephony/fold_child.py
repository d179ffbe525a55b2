"""What a fold worker of `manage.py pbx --fold-workers N` runs (telephony.folding).

Imported by the child before Django is set up (it is where the child's initializer lives), so
it imports nothing of the project's models at the top.
"""

import os
import signal
import threading
import time

from django.conf import settings

# How often a worker looks whether the pbx process that started it is still there.
PARENT_LOOK_SECONDS = 1.0


def worker_start(databases: dict, lease_seconds: float):
    """In the child: Django set up on the parent's databases (a test's, too), before any query."""
    # The parent decides when a worker stops (after folding what is queued), not a Ctrl-C or a
    # SIGTERM sent to the whole process group; a worker whose parent is gone ends by itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    threading.Thread(target=_end_with, args=(parent,), name="parent-watch", daemon=True).start()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    settings.DATABASES = databases
    settings.PBX_LEASE_SECONDS = lease_seconds
    import django
    from django.db import connections

    django.setup()
    # Read from the settings at the first query: forget any reading made before (a main module
    # that set Django up when the child imported it).
    connections.close_all()
    connections.__dict__.pop("settings", None)


def _end_with(parent: int):
    """A worker of a pbx process killed outright (kill -9, an OOM) would wait for work forever, its
    database session open: it ends once its parent is gone (it is then another process's child)."""
    while os.getppid() == parent:
        time.sleep(PARENT_LOOK_SECONDS)
    os._exit(1)


def worker_pid() -> int:
    return os.getpid()


def fold_share(server_id: int, events: list[dict], lease) -> list:
    # The parent's connection hygiene (idle transactions bounded by the lease) in the child.
    from telephony.process import _in_thread
    from telephony.services import calls

    return _in_thread(calls.call_events_fold, {"server_id": server_id, "events": events, "lease": lease})


def worker_stop():
    """Its database session ended before the process is: a test database can be dropped at once."""
    from django.db import connections

    connections.close_all()
