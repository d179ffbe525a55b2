"""Webhook deliveries published once per fold batch, then attempted each on its own: one failing
holds back none of the others, a worker killed mid-batch loses nothing, none is POSTed twice."""

import datetime as dt
import json

import pytest
from celery.signals import before_task_publish
from django.utils import timezone
from kombu.exceptions import OperationalError

from pbxsim.tracefile import ami_events
from telephony import tasks
from telephony.models import CallRecord, WebhookDelivery
from telephony.services import calls, originate, webhooks
from tests.factories import CompanyFactory
from tests.telephony import test_push_and_webhooks as push_tests
from tests.telephony.factories import CallRecordFactory, PbxServerFactory

pytestmark = pytest.mark.django_db

# A company's receiver (the only third party, faked) and how the fold queues deliveries.
Receiver, receiver, queue = push_tests.Receiver, push_tests.receiver, push_tests.queue

RENAMED = ("Uniqueid", "DestUniqueid", "UniqueID", "Linkedid", "DestLinkedid", "BridgeUniqueid")


@pytest.fixture
def published():
    """The tasks really sent to the broker (the project's own filesystem transport in tests)."""
    sent = []

    def record(sender=None, body=None, headers=None, **kwargs):
        sent.append((sender, body[0], headers))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)


def calls_of_one_batch(server, company, count):
    """`count` click2call calls as real Asterisk 22 sent them, each claimed by the company."""
    events = []
    for n in range(count):
        record = originate.call_record_claim(
            server=server,
            uniqueid=f"b{n}-call-1-1",
            company=company,
            app="click2call",
            app_ref=f"request:{n}",
            callee="5551010",
            caller="5550000",
        )
        originate.call_record_send(record_id=record.pk)
        events += [
            {k: f"b{n}-{v}" if k in RENAMED else v for k, v in event.items()}
            for event in ami_events("click2call-completed", epoch=1_795_422_307.0)
        ]
    return events


@pytest.mark.parametrize("count", [1, 25])
def test_a_fold_batch_is_one_publish_whatever_its_size(count, published, django_capture_on_commit_callbacks):
    server = PbxServerFactory()
    company = CompanyFactory(webhook_url="https://hooks.example.com/cc")
    events = calls_of_one_batch(server, company, count)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        calls.call_events_fold(server_id=server.pk, events=events)
    deliveries = sorted(WebhookDelivery.objects.values_list("pk", flat=True))
    assert len(deliveries) >= 3 * count  # ringing, answer and hangup of each call at least
    assert [(name, sorted(args[0])) for name, args, _ in published] == [
        ("telephony.deliver_webhooks", deliveries)
    ]
    # Still built from the snapshot at their transition, though folded in one batch with the hangup.
    leg = WebhookDelivery.objects.filter(payload__uniqueid="b0-call-1-1")
    payloads = {d.event: d.payload for d in leg}
    assert (payloads["ringing"]["disposition"], payloads["hangup"]["disposition"]) == ("PENDING", "ANSWERED")


def test_a_batch_is_posted_signed_and_a_failure_holds_back_none_of_the_others(receiver, company, published):
    company.webhook_url = receiver
    company.save()
    queue(CallRecordFactory(company=company), "ringing", "answer", "hangup")
    first, second, third = WebhookDelivery.objects.order_by("id")
    WebhookDelivery.objects.filter(pk=second.pk).update(url="http://127.0.0.1:9/closed")  # unreachable
    Receiver.answers = [503, 204]  # the first answers 503, the third 204
    published.clear()

    tasks.deliver_webhooks([first.pk, second.pk, third.pk])

    assert [json.loads(body)["event"] for _, body in Receiver.received] == ["ringing", "hangup"]
    headers, body = Receiver.received[1]
    assert headers["X-Signature"] == webhooks.webhook_signature(company.webhook_secret, body)
    states = dict(WebhookDelivery.objects.values_list("pk", "status"))
    assert states == {first.pk: "pending", second.pk: "pending", third.pk: "delivered"}
    # Each failed one goes on alone, as its first retry, after a backoff (not at once).
    assert sorted((name, args[0], h["retries"], h["eta"] is not None) for name, args, h in published) == [
        ("telephony.deliver_webhook", first.pk, 1, True),
        ("telephony.deliver_webhook", second.pk, 1, True),
    ]


def test_what_the_budget_did_not_reach_goes_on_in_a_task_each(receiver, company, published, monkeypatch):
    company.webhook_url = receiver
    company.save()
    queue(CallRecordFactory(company=company), "ringing", "hangup")
    ids = sorted(WebhookDelivery.objects.values_list("pk", flat=True))
    monkeypatch.setattr(webhooks, "WEBHOOK_BATCH_BUDGET_SECONDS", -1)
    published.clear()
    tasks.deliver_webhooks(ids)
    assert Receiver.received == []
    assert [(name, args[0], h["eta"]) for name, args, h in published] == [
        ("telephony.deliver_webhook", pk, None) for pk in ids
    ]


class Killed(BaseException):
    """The worker's process killed: nothing after it runs, no except clause catches it."""


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_nothing_and_posts_nothing_twice(
    receiver, company, settings, monkeypatch
):
    company.webhook_url = receiver
    company.save()
    queue(CallRecordFactory(company=company), "ringing", "answer", "hangup")
    first, second, third = WebhookDelivery.objects.order_by("id")
    opened = []
    real_open = webhooks.public_url_open

    def open_then_die(url, **kwargs):
        opened.append(url)
        if len(opened) == 2:  # the second delivery leased, its POST not yet sent
            raise Killed
        return real_open(url, **kwargs)

    monkeypatch.setattr(webhooks, "public_url_open", open_then_die)
    with pytest.raises(Killed):
        tasks.deliver_webhooks([first.pk, second.pk, third.pk])
    monkeypatch.setattr(webhooks, "public_url_open", real_open)
    assert len(Receiver.received) == 1
    assert webhooks.webhook_deliveries_lost() == []  # too early: the second still leased, the third fresh

    long_ago = timezone.now() - dt.timedelta(hours=1)
    WebhookDelivery.objects.update(created_at=long_ago)
    WebhookDelivery.objects.filter(pk=second.pk).update(leased_until=long_ago, last_attempt_at=long_ago)
    assert sorted(webhooks.webhook_deliveries_lost()) == [second.pk, third.pk]

    settings.CELERY_TASK_ALWAYS_EAGER = True
    tasks.requeue_webhooks.apply()
    tasks.requeue_webhooks.apply()  # a second round finds nothing left
    assert sorted(json.loads(body)["event"] for _, body in Receiver.received) == [
        "answer",
        "hangup",
        "ringing",
    ]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert webhooks.webhook_deliveries_lost() == []


def test_a_broker_down_at_publish_leaves_the_batch_to_the_requeue(
    company, monkeypatch, django_capture_on_commit_callbacks
):
    company.webhook_url = "https://hooks.example.com/cc"
    company.save()

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(tasks.deliver_webhooks, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        queue(CallRecordFactory(company=company), "ringing", "hangup")  # robust: no error raised here
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("pending", 0)}
    WebhookDelivery.objects.update(created_at=timezone.now() - dt.timedelta(minutes=6))
    assert len(webhooks.webhook_deliveries_lost()) == 2


def test_no_webhook_no_publish(published, django_capture_on_commit_callbacks):
    server = PbxServerFactory()
    events = calls_of_one_batch(server, CompanyFactory(webhook_url=""), 2)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        calls.call_events_fold(server_id=server.pk, events=events)
    assert CallRecord.objects.filter(ended_at__isnull=False).exists()
    assert published == [] and not WebhookDelivery.objects.exists()
