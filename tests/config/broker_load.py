"""Producer and consumer processes of tests/config/test_broker.py, on the embedded broker.

    python -m tests.config.broker_load produce FOLDER NAME COUNT
    python -m tests.config.broker_load consume FOLDER COUNT
    python -m tests.config.broker_load send COUNT

The producer publishes COUNT messages {"producer": NAME, "n": i, "pad": ...} of 0 to 100 kB; the
consumer prints "ready" once it consumes, then the messages it received, and exits when it has
COUNT of them (or after a minute, or at the first error, which is what killed Celery's worker).
`send` queues COUNT tasks through the project's Celery app (its broker under VAR_DIR), as the web
and beat processes queue tasks for `make run`'s worker: a task the worker does not know, so it
reads each message whole, logs it as unregistered and drops it, with no database needed.
"""

import contextlib
import json
import sys
import time

from kombu import Connection, Queue

from config.celery import FilesystemTransport

QUEUE = Queue("default", routing_key="default")
NOOP_TASK = "tests.broker_load.noop"


def connect(folder: str) -> Connection:
    # Polling without pause is the worst case for a reader racing the writers.
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}
    options["polling_interval"] = 0
    return Connection("filesystem://", transport=FilesystemTransport, transport_options=options)


def produce(folder: str, name: str, count: int) -> None:
    with connect(folder) as connection:
        producer = connection.Producer(serializer="json")
        for n in range(count):
            body = {"producer": name, "n": n, "pad": "x" * (n % 50) * 2000}
            producer.publish(body, routing_key="default", declare=[QUEUE])


def consume(folder: str, count: int) -> None:
    received = []

    def on_message(body, message):
        whole = body["pad"] == "x" * (body["n"] % 50) * 2000
        received.append([body["producer"], body["n"], whole])
        message.ack()

    with connect(folder) as connection, connection.Consumer(QUEUE, callbacks=[on_message]):
        print("ready", flush=True)
        deadline = time.monotonic() + 60
        while len(received) < count and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=1)
    print(json.dumps(received), flush=True)


def send(count: int) -> None:
    from config.celery import app

    with app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task(NOOP_TASK, producer=producer)


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    if role == "send":
        send(int(rest[0]))
        sys.exit()
    folder, *rest = rest
    if role == "produce":
        produce(folder, rest[0], int(rest[1]))
    else:
        consume(folder, int(rest[0]))
