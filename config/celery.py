"""The Celery app: configured from Django's settings (CELERY_*), tasks autodiscovered."""

import contextlib
import logging
import os
import time
import uuid
from queue import Empty

from celery import Celery
from celery.worker import state as worker_state
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

STOP_CHECK_SECONDS = 0.1

logger = logging.getLogger(__name__)

# A file whose name ends so is never taken for a message or an exchange table by any reader.
PARTIAL_SUFFIX = ".partial"


def _worker_stopping():
    return worker_state.should_stop is not None or worker_state.should_terminate is not None


def _write_whole(path: str, data: bytes) -> None:
    """`data` at `path`, seen by others whole or not at all: written under another name in the same
    folder, then renamed over `path` (a rename within a file system is atomic)."""
    partial = f"{path}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
    try:
        with open(partial, "wb") as f:
            f.write(data)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise ChannelError(f"Cannot write {path!r}") from exc


class FilesystemChannel(filesystem.Channel):
    """kombu 5.7's filesystem channel, safe for several producers and a consumer at once.

    kombu creates a message file under its final name, then locks and writes it; its consumer
    neither looks at the lock nor can wait for it, since it first moves the file away (a rename
    ignores locks), then reads it. A consumer polling between the producer's open and its write
    read an empty file, and the JSONDecodeError ended the worker ("Unrecoverable error"): 2 runs
    in 4 of the click2call benchmark, every run of tests/config/test_broker.py. The exchange
    tables, read on every publish, had the same gap (opened "wb", truncated, before the lock).
    Here both are written whole, then renamed into place; a message that still cannot be read (a
    file from an older version, a full disk) is
    logged and the message dropped, never raised into the worker.
    """

    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        _write_whole(os.path.join(self.data_folder_out, name), dumps(payload).encode())

    def _get(self, queue):
        while True:
            # kombu's _get raises the decoding error after the file is moved out of the queue, so
            # a retry goes on with the next message.
            try:
                return super()._get(queue)
            except ValueError as exc:
                logger.error("A message of queue %s could not be read and was dropped: %s", queue, exc)

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._exchange_lock(file):
            table = [filesystem.exchange_queue_t(*q) for q in self.get_table(exchange)]
            if binding not in table:
                table.insert(0, binding)
                _write_whole(str(file), dumps(table).encode())

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        filesystem.virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        file = self._exchange_file(exchange)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        if not file.exists():
            return
        with self._exchange_lock(file):
            table = [filesystem.exchange_queue_t(*q) for q in self.get_table(exchange)]
            if binding in table:
                table.remove(binding)
                _write_whole(str(file), dumps(table).encode())

    @contextlib.contextmanager
    def _exchange_lock(self, file):
        # The table file itself is replaced on each write, so writers take turns on a lock file
        # beside it (a read-modify-write of the table must not lose a concurrent binding).
        with open(f"{file}.lock", "ab") as lock_file:
            filesystem.lock(lock_file, filesystem.LOCK_EX)
            try:
                yield
            finally:
                filesystem.unlock(lock_file)


class FilesystemTransport(filesystem.Transport):
    """kombu's filesystem transport (the broker of `make run`), which a stopping worker stops waiting on.

    It has no socket to wake up on: Celery's loop for such transports waits 2 s at a time for a
    message, sleeping a second between polls, and waits once more after a stop request, so an idle
    worker took 4 to 6 s to stop on SIGTERM and `make run`'s Ctrl-C ended in SIGKILL. Here the wait
    ends within STOP_CHECK_SECONDS of the request; messages are polled for as often as before.
    Its channel writes each file whole (FilesystemChannel).
    """

    Channel = FilesystemChannel

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
