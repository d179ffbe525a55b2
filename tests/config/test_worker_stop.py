"""Ctrl-C on `make run`: honcho sends SIGTERM to each process group, and the worker must stop at once.

test_procfile_worker_stops_quietly_on_sigterm starts a real worker (a few seconds): it is the
measurement behind the fix, bounded generously so a loaded machine does not fail it. Before the
fix an idle worker took 4 to 7 s, its pool children were killed mid-read (ERROR lines) and at times
its exit hung for good.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from celery.worker import state as worker_state
from kombu import Connection, Queue

from config.celery import FilesystemTransport

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker(tmp_path):
    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}
    connection = Connection("filesystem://", transport=FilesystemTransport, transport_options=options)
    with connection, connection.Consumer(Queue("default"), callbacks=[lambda body, message: None]):
        yield connection
    worker_state.should_stop = None


def test_waiting_for_messages_ends_when_the_worker_is_asked_to_stop(broker):
    threading.Timer(0.3, setattr, args=(worker_state, "should_stop", 0)).start()
    waiting = threading.Thread(target=lambda: pytest.raises(TimeoutError, broker.drain_events, timeout=60))
    waiting.start()
    waiting.join(15)
    assert not waiting.is_alive(), "drain_events waited out its timeout after the stop request"


def test_waiting_still_times_out_without_a_stop_request(broker):
    with pytest.raises(TimeoutError):
        broker.drain_events(timeout=0.2)


def test_procfile_worker_stops_quietly_on_sigterm(tmp_path):
    line = next(
        line
        for line in (PROJECT_DIR / "Procfile.demo").read_text().splitlines()
        if line.startswith("worker:")
    )
    # The Procfile names celery, which the Makefile finds in the venv.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "VAR_DIR": str(tmp_path), "DEBUG": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        # Its own session, as honcho starts it: the signal goes to the whole group, pool children included.
        worker = subprocess.Popen(
            line.partition(":")[2],
            shell=True,
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while b" ready." not in log.read_bytes():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.wait(15) == 0, log.read_text()
        with pytest.raises(ProcessLookupError):  # nothing left in its group: no pool child outlived it
            os.killpg(worker.pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert "ERROR" not in log.read_text(), log.read_text()
