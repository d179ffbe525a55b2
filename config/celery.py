"""The Celery app: configured from Django's settings (CELERY_*), tasks autodiscovered."""

import os
import time
from queue import Empty

from celery import Celery
from celery.worker import state as worker_state
from kombu.transport import filesystem

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

STOP_CHECK_SECONDS = 0.1


def _worker_stopping():
    return worker_state.should_stop is not None or worker_state.should_terminate is not None


class FilesystemTransport(filesystem.Transport):
    """kombu's filesystem transport (the broker of `make run`), which a stopping worker stops waiting on.

    It has no socket to wake up on: Celery's loop for such transports waits 2 s at a time for a
    message, sleeping a second between polls, and waits once more after a stop request, so an idle
    worker took 4 to 6 s to stop on SIGTERM and `make run`'s Ctrl-C ended in SIGKILL. Here the wait
    ends within STOP_CHECK_SECONDS of the request; messages are polled for as often as before.
    """

    def drain_events(self, connection, timeout=None):
        started = time.monotonic()
        while not _worker_stopping():
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pass
            next_poll = time.monotonic() + self.polling_interval
            if timeout is not None:
                if time.monotonic() - started >= timeout:
                    break
                next_poll = min(next_poll, started + timeout)
            while time.monotonic() < next_poll and not _worker_stopping():
                time.sleep(STOP_CHECK_SECONDS)
        raise TimeoutError()
