"""asterCC-style pushed events, and call events pushed to a company's webhook."""

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone

from telephony.events import CallAnswered, CallEnded, CallSnapshot, CallStarted
from telephony.models import CallRecord, WebhookDelivery
from telephony.services import push as push_services
from telephony.services import webhooks
from tests.factories import CompanyFactory
from tests.telephony.factories import CallRecordFactory

pytestmark = pytest.mark.django_db

URL = "/api/telephony/events/"


@pytest.fixture
def token(company):
    return push_services.push_token_create(company=company)


def queue(record, *names):
    """Deliveries for these transitions of a record, as the fold or the push ingest makes them."""
    kinds = {"ringing": CallStarted, "answer": CallAnswered, "hangup": CallEnded}
    webhooks.webhook_deliveries_create(events=[kinds[name](record=CallSnapshot.of(record)) for name in names])


# Pushed times must be recent: the calls of this module rang an hour before it was loaded.
BASE = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)


def at(minute, second=0) -> str:
    """BASE plus minute:second, as a PBX writes it."""
    when = BASE + dt.timedelta(minutes=minute, seconds=second)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def push(client, token, **payload):
    return client.post(URL, payload, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token.key}")


def test_ringing_answer_hangup_make_one_record(client, token):
    base = {"source": "CALLEE", "sessionid": "s-1", "calltype": "dialout", "activenum": "5551001"}
    assert push(client, token, event="ringing", eventTime=at(0), **base).status_code == 202
    assert push(client, token, event="answer", eventTime=at(0, 4), **base).status_code == 202
    response = push(client, token, event="hangup", eventTime=at(1, 4), **base)
    assert response.status_code == 202
    record = CallRecord.objects.get()
    assert (record.company, record.callee, record.disposition) == (token.company, "5551001", "ANSWERED")
    assert (record.duration, record.billsec) == (64, 60)
    assert response.json()["billsec"] == 60


def test_duplicated_and_reordered_pushes_change_nothing(client, token):
    base = {"sessionid": "s-2", "activenum": "5551001"}
    push(client, token, event="hangup", eventTime=at(1), **base)
    push(client, token, event="answer", eventTime=at(0, 30), **base)
    push(client, token, event="ringing", eventTime=at(0), **base)
    push(client, token, event="answer", eventTime=at(0, 30), **base)
    push(client, token, event="hangup", eventTime=at(1), **base)
    record = CallRecord.objects.get()
    assert (record.duration, record.billsec, record.callee) == (60, 30, "5551001")


def test_sessions_of_two_companies_never_mix(client, token):
    other = push_services.push_token_create(company=CompanyFactory())
    push(client, token, event="ringing", sessionid="same", eventTime=str(int(timezone.now().timestamp())))
    push(client, other, event="ringing", sessionid="same", eventTime=str(int(timezone.now().timestamp())))
    assert CallRecord.objects.filter(uniqueid="same").count() == 2


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"event": "ringing", "eventTime": at(0)}, "invalid_field", "sessionid"),
        ({"event": "ringing", "sessionid": "x" * 151, "eventTime": at(0)}, "invalid_field", "sessionid"),
        ({"event": "ring", "sessionid": "x", "eventTime": at(0)}, "unknown_event", "event must be one of"),
        ({"event": "answer", "sessionid": "x", "eventTime": "yesterday"}, "event_time_invalid", "eventTime"),
        (
            {"event": "answer", "sessionid": "x", "eventTime": str(int(BASE.timestamp())), "calltype": "fax"},
            "unknown_calltype",
            "calltype",
        ),
    ],
)
def test_bad_pushes_get_a_clear_400_with_a_stable_code(client, token, payload, code, message):
    response = push(client, token, **payload)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert message in json.dumps(response.json())
    assert not CallRecord.objects.exists()


def test_answer_after_hangup_is_refused(client, token):
    push(client, token, event="hangup", sessionid="x", eventTime=at(0))
    response = push(client, token, event="answer", sessionid="x", eventTime=at(5))
    assert response.status_code == 400
    assert CallRecord.objects.get().answered_at is None


def test_unknown_or_revoked_token_is_401(client, token):
    response = client.post(URL, {}, content_type="application/json", HTTP_AUTHORIZATION="Token nope")
    assert response.status_code == 401
    token.active = False
    token.save()
    assert push(client, token, event="ringing", sessionid="x", eventTime="1").status_code == 401
    assert client.post(URL, {}, content_type="application/json").status_code == 401


# A WSGI server hands header bytes over as latin-1 text, as the UTF-8 key here.
@pytest.mark.parametrize("key", ["abc\x00def", "ключ".encode().decode("latin-1"), "a" * 65])
def test_a_key_no_token_can_have_is_401_before_any_query(client, key, django_assert_num_queries):
    # A NUL byte would make PostgreSQL fail the lookup: such a key is refused before it.
    with django_assert_num_queries(0):
        response = client.post(URL, {}, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 401


class Receiver(BaseHTTPRequestHandler):
    """A company's webhook endpoint (a third party: the only thing faked)."""

    answers: list[int] = []
    received: list[tuple[dict, bytes]] = []
    hold: threading.Event | None = None  # set by a test that wants a slow receiver

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        if Receiver.hold is not None:
            Receiver.hold.wait(10)
        self.send_response(Receiver.answers.pop(0) if Receiver.answers else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    # The receiver runs on this machine: a private target the operator has to allow.
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.answers, Receiver.received, Receiver.hold = [], [], None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_call_events_are_posted_signed(client, token, receiver, django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    company = token.company
    company.webhook_url = receiver
    company.save()
    with django_capture_on_commit_callbacks(execute=True):
        push(client, token, event="ringing", sessionid="s-9", eventTime=at(0), activenum="555")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.event) == ("delivered", 1, "ringing")
    headers, body = Receiver.received[0]
    expected = "sha256=" + hmac.new(company.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Signature"] == expected
    assert json.loads(body)["activenum"] == "555"


def test_failed_delivery_is_retried_then_given_up(receiver, company):
    company.webhook_url = receiver
    company.save()
    record = CallRecordFactory(company=company)
    queue(record, "hangup")
    delivery = WebhookDelivery.objects.get()
    Receiver.answers = [503] * webhooks.WEBHOOK_MAX_ATTEMPTS
    for _ in range(webhooks.WEBHOOK_MAX_ATTEMPTS - 1):
        with pytest.raises(webhooks.WebhookTransientError):
            webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        "failed",
        webhooks.WEBHOOK_MAX_ATTEMPTS,
        503,
    )
    assert webhooks.webhook_delivery_attempt(delivery_id=delivery.pk) is None  # nothing more is sent


def test_client_error_fails_at_once_and_unreachable_is_retried(receiver, company):
    company.webhook_url = receiver
    company.save()
    record = CallRecordFactory(company=company)
    queue(record, "answer", "hangup")
    first, second = WebhookDelivery.objects.order_by("id")
    Receiver.answers = [410]
    webhooks.webhook_delivery_attempt(delivery_id=first.pk)
    first.refresh_from_db()
    assert (first.status, first.last_error) == ("failed", "HTTP 410 Gone")
    WebhookDelivery.objects.filter(pk=second.pk).update(url="http://127.0.0.1:9/closed")
    with pytest.raises(webhooks.WebhookTransientError, match="unreachable"):
        webhooks.webhook_delivery_attempt(delivery_id=second.pk)


def test_deliveries_page_shows_own_company_only(client, company_user, other_company_user):
    from tests.tenancy import assert_other_company_gets_404

    record = CallRecordFactory(company=company_user.company)
    company_user.company.webhook_url = "http://127.0.0.1:9/x"
    company_user.company.save()
    queue(record, "hangup")
    url = reverse("telephony:webhooks", args=[company_user.company.slug])
    assert_other_company_gets_404(client, url, owner=company_user, outsider=other_company_user)
    client.force_login(company_user)
    assert b"hangup" in client.get(url).content


def test_deliveries_whose_task_was_lost_are_found_again(company):
    import datetime as dt

    from django.utils import timezone

    company.webhook_url = "http://127.0.0.1:9/x"
    company.save()
    record = CallRecordFactory(company=company)
    queue(record, "ringing", "hangup")
    lost, fresh = WebhookDelivery.objects.order_by("id")
    WebhookDelivery.objects.filter(pk=lost.pk).update(created_at=timezone.now() - dt.timedelta(minutes=6))
    assert webhooks.webhook_deliveries_lost() == [lost.pk]
    WebhookDelivery.objects.filter(pk=lost.pk).update(attempts=1)  # in Celery's retry backoff: not lost
    assert webhooks.webhook_deliveries_lost() == []


@pytest.mark.django_db(transaction=True)
def test_a_delivery_in_flight_is_never_posted_twice(receiver, company):
    """A slow receiver: while the first attempt waits for its answer, a retry or the requeue
    schedule finds the delivery leased and posts nothing."""
    company.webhook_url = receiver
    company.save()
    record = CallRecordFactory(company=company)
    queue(record, "hangup")
    delivery = WebhookDelivery.objects.get()
    Receiver.hold = threading.Event()
    first = threading.Thread(target=webhooks.webhook_delivery_attempt, kwargs={"delivery_id": delivery.pk})
    first.start()
    try:
        wait_until_posted = [Receiver.hold.wait(0.02) or Receiver.received for _ in range(250)]
        assert any(wait_until_posted), "the first attempt never reached the receiver"
        assert webhooks.webhook_delivery_attempt(delivery_id=delivery.pk) is None  # a retry meanwhile
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            created_at=timezone.now() - dt.timedelta(hours=1)
        )
        assert webhooks.webhook_deliveries_lost() == []  # nor does the requeue take it
    finally:
        Receiver.hold.set()
        first.join(10)
    delivery.refresh_from_db()
    assert (len(Receiver.received), delivery.status, delivery.attempts) == (1, "delivered", 1)
    assert delivery.leased_until is None


@pytest.mark.django_db(transaction=True)
def test_an_attempt_that_outlived_its_lease_leaves_the_new_owners_outcome(receiver, company):
    """A worker stalled in its POST past WEBHOOK_LEASE: the requeue gave the delivery to another
    task, which delivered it. The stalled attempt's late answer (a 503) changes nothing."""
    company.webhook_url = receiver
    company.save()
    record = CallRecordFactory(company=company)
    queue(record, "hangup")
    delivery = WebhookDelivery.objects.get()
    Receiver.hold, Receiver.answers = threading.Event(), [503]
    stalled = []
    first = threading.Thread(
        target=lambda: stalled.append(webhooks.webhook_delivery_attempt(delivery_id=delivery.pk))
    )
    first.start()
    try:
        assert any(Receiver.hold.wait(0.02) or Receiver.received for _ in range(250)), "never posted"
        # The lease ran out while the receiver held the POST; another task took it and delivered.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            leased_until=timezone.now() - dt.timedelta(seconds=1)
        )
        Receiver.hold.set()  # hold no longer: the takeover's POST is answered at once (204)
        Receiver.answers.append(204)
        Receiver.hold = None
        taken_over = webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
        assert taken_over is not None and taken_over.status == "delivered"
    finally:
        Receiver.hold = None
        first.join(10)
    delivery.refresh_from_db()
    assert stalled == [None]
    assert (delivery.status, delivery.last_status_code, delivery.leased_until) == ("delivered", 204, None)
