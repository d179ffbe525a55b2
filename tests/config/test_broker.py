"""The embedded broker (config.celery.FilesystemTransport) under concurrent producers.

kombu 5.7 creates a message file under its final name before writing it, and its consumer reads
whatever it finds: a worker polling at that moment read an empty file and died ("Unrecoverable
error: JSONDecodeError", 2 benchmark runs in 4). Before the fix the load test below failed every
run within its first few hundred messages.
"""

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kombu import Connection, Queue

from config.celery import FilesystemTransport
from tests.config.broker_load import NOOP_TASK

PROJECT_DIR = Path(__file__).resolve().parents[2]
PER_PRODUCER = 1500


def _start(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.config.broker_load", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_producers_and_a_consumer_under_load_lose_and_break_nothing(tmp_path):
    consumer = _start("consume", str(tmp_path), str(2 * PER_PRODUCER))
    try:
        assert consumer.stdout.readline().strip() == "ready", consumer.stderr.read()
        producers = [_start("produce", str(tmp_path), name, str(PER_PRODUCER)) for name in ("a", "b")]
        for producer in producers:
            _, errors = producer.communicate(timeout=120)
            assert producer.returncode == 0, errors
        output, errors = consumer.communicate(timeout=120)
    finally:
        consumer.kill()
    assert consumer.returncode == 0, errors[-2000:]
    received = json.loads(output)
    assert sorted((name, n) for name, n, _ in received) == sorted(
        (name, n) for name in ("a", "b") for n in range(PER_PRODUCER)
    )
    assert all(whole for _, _, whole in received)
    # Nothing half-written is left behind for a later reader.
    assert [name for name in os.listdir(tmp_path) if name.endswith(".partial")] == []


def test_an_unreadable_message_is_dropped_with_an_error_and_the_next_one_delivered(tmp_path, caplog):
    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}
    queue = Queue("default", routing_key="default")
    # A message file of an older version cut short (the worker died on such a file at each start).
    # Named to be read first: files are taken in name order, named by the monotonic clock in ms,
    # which never starts with 0 ("1_0" sorted after it once the machine was up 2.8 hours).
    (tmp_path / "0_0.default.msg").write_text('{"body": "eyJ')
    received = []

    def on_message(body, message):
        received.append(body)
        message.ack()

    with Connection("filesystem://", transport=FilesystemTransport, transport_options=options) as connection:
        connection.Producer(serializer="json").publish({"call": 42}, routing_key="default", declare=[queue])
        with (
            caplog.at_level(logging.ERROR, logger="config.celery"),
            connection.Consumer(queue, callbacks=[on_message]),
        ):
            connection.drain_events(timeout=5)
    assert received == [{"call": 42}]
    assert "could not be read and was dropped" in caplog.text


def test_the_procfile_worker_outlives_two_producers_under_load(tmp_path):
    """`make run`'s worker (Procfile.demo) takes 2 x 1000 tasks queued while it runs, and lives."""
    procfile = (PROJECT_DIR / "Procfile.demo").read_text().splitlines()
    line = next(line for line in procfile if line.startswith("worker:"))
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "VAR_DIR": str(tmp_path), "DEBUG": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
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
        producers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.config.broker_load", "send", "1000"],
                cwd=PROJECT_DIR,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for producer in producers:
            _, errors = producer.communicate(timeout=120)
            assert producer.returncode == 0, errors
        queue = tmp_path / "broker" / "in"
        deadline = time.monotonic() + 120
        while any(name.endswith(".msg") for name in os.listdir(queue)):
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker stopped taking tasks"
            time.sleep(0.1)
        assert worker.poll() is None, log.read_text()[-3000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    text = log.read_text()
    assert "Unrecoverable error" not in text and "JSONDecodeError" not in text, text[-3000:]
    # Each message was read whole: its task's name was in it.
    assert text.count(f"Received unregistered task of type '{NOOP_TASK}'") == 2000
