"""The configured broker carries a task to a worker: the filesystem transport
locally, Redis in CI (.ci/run sets REDIS_URL)."""

import threading

from celery.contrib.testing.worker import start_worker

from config.celery import app

received = []
done = threading.Event()


@app.task(name="tests.record_delivery")
def record_delivery(payload):
    received.append(payload)
    done.set()


def test_a_task_goes_through_the_broker_to_a_worker():
    assert app.conf.task_serializer == "json"
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        record_delivery.apply_async(args=[{"call": 42}])
        assert done.wait(20), "the worker never received the task"
    assert received == [{"call": 42}]
