"""Sending a ticket SMS: queued at the call's end, sent by the send_sms task through the company's
provider (a real local gateway), the gateway's answer stored; 4xx failed for good, 5xx and timeouts
retried with a doubling pause; claimed, so never sent twice; a sweep takes up what a lost task left."""

import datetime as dt
import importlib
import logging
import threading

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from config.outbox import CLAIM_SECONDS
from tests.tickets.factories import (
    SmsSettingsFactory,
    TechnicianFactory,
    TicketCallFactory,
    TicketHopFactory,
    TicketLineFactory,
)
from tests.tickets.sms_gateway import gateway_running
from tickets import tasks
from tickets.models import TicketMessage
from tickets.services import messages
from tickets.services.messages import SmsRetry, ticket_sms_lost, ticket_sms_send

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(settings):
    with gateway_running(settings) as running:
        yield running


def ended_call(gateway=None, *, provider="http", **technician):
    """A call ended at Bruno's phone, its SMS and IM written (the SMS's task not run)."""
    line = TicketLineFactory(company__time_zone="Europe/Rome")
    fields = {"provider": provider, "parameters": "to={to}\ntext={text}", "country_prefix": "39"}
    if gateway is not None:
        fields |= {"url": gateway.url, "timeout_seconds": 1}
    SmsSettingsFactory(company=line.company, **fields)
    bruno = TechnicianFactory(line=line, name="Bruno", mobile="3470000732", **technician)
    call = TicketCallFactory(line=line, caller="03472619287")
    TicketHopFactory(call=call, technician=bruno, sequence=1, last=True, ticket=1234)
    written = messages.ticket_messages_queue(call_id=call.pk)
    return TicketMessage.objects.get(pk=written["sms"])


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def test_the_sms_is_sent_after_the_calls_end_and_the_gateways_answer_kept(
    gateway, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=True):
        sms = ended_call(gateway)
    sms.refresh_from_db()
    (request,) = gateway.received
    assert dict(request.form) == {"to": "393470000732", "text": sms.body} and "_Ticket_1234_" in sms.body
    assert (sms.state, sms.attempts, sms.provider_reference, sms.delivery_status) == (
        "sent",
        1,
        "gw-1",
        "queued",
    )
    assert sms.sent_at and sms.delivery_at and sms.next_try_at is None and sms.last_error == ""
    assert TicketMessage.objects.get(channel="im").state == "pending"  # the pbx process's to send


def test_a_client_error_fails_the_sms_for_good_with_the_gateways_reason(gateway):
    sms = ended_call(gateway)
    gateway.answers.append((400, b'{"error": "invalid number"}'))
    assert ticket_sms_send(message_id=sms.pk) is not None
    sms.refresh_from_db()
    assert (sms.state, sms.attempts, sms.delivery_status, sms.next_try_at) == ("failed", 1, "HTTP 400", None)
    assert sms.last_error == 'HTTP 400 Bad Request: {"error": "invalid number"}'
    assert ticket_sms_send(message_id=sms.pk, now=later(3600)) is None  # never tried again
    assert ticket_sms_lost(now=later(3600)) == []
    assert len(gateway.received) == 1


def test_a_server_error_is_retried_after_a_doubling_pause_then_sent(gateway):
    sms = ended_call(gateway)
    gateway.answers += [(503, b"busy"), (502, b"")]
    with pytest.raises(SmsRetry) as retry:
        ticket_sms_send(message_id=sms.pk)
    assert retry.value.countdown == messages.SMS_RETRY_FIRST_SECONDS
    sms.refresh_from_db()
    assert (sms.state, sms.attempts, sms.last_error) == ("pending", 1, "HTTP 503 Service Unavailable: busy")
    pause = (sms.next_try_at - timezone.now()).total_seconds()
    assert messages.SMS_RETRY_FIRST_SECONDS - 5 < pause <= messages.SMS_RETRY_FIRST_SECONDS
    assert ticket_sms_send(message_id=sms.pk) is None  # too early: nothing sent
    with pytest.raises(SmsRetry) as retry:
        ticket_sms_send(message_id=sms.pk, now=later(31))
    assert retry.value.countdown == 2 * messages.SMS_RETRY_FIRST_SECONDS
    sent = ticket_sms_send(message_id=sms.pk, now=later(31 + 61))
    sms.refresh_from_db()
    assert sent is not None and (sms.state, sms.attempts, sms.last_error) == ("sent", 3, "")
    assert len(gateway.received) == 3


def test_a_gateway_that_never_recovers_fails_the_sms_after_the_last_try(gateway):
    sms = ended_call(gateway)
    gateway.answers += [(500, b"")] * messages.SMS_MAX_ATTEMPTS
    at, pauses = timezone.now(), []
    for _ in range(messages.SMS_MAX_ATTEMPTS - 1):
        with pytest.raises(SmsRetry) as retry:
            ticket_sms_send(message_id=sms.pk, now=at)
        pauses.append(retry.value.countdown)
        at += dt.timedelta(seconds=retry.value.countdown + 1)
    ticket_sms_send(message_id=sms.pk, now=at)
    sms.refresh_from_db()
    assert pauses == [30, 60, 120, 240, 480]
    assert (sms.state, sms.attempts, sms.last_error) == ("failed", 6, "HTTP 500 Internal Server Error")
    assert len(gateway.received) == messages.SMS_MAX_ATTEMPTS


def test_a_gateway_slower_than_the_timeout_is_retried(gateway):
    sms = ended_call(gateway)
    gateway.slow = 1
    with pytest.raises(SmsRetry):
        ticket_sms_send(message_id=sms.pk)
    sms.refresh_from_db()
    assert (sms.state, sms.last_error) == ("pending", "unreachable: no answer within 1 s")
    ticket_sms_send(message_id=sms.pk, now=later(31))
    sms.refresh_from_db()
    assert sms.state == "sent" and len(gateway.received) == 2


def test_the_task_retries_a_failure_that_may_pass_and_a_later_run_sends_it(gateway, settings):
    """In eager mode Celery runs the retry at once: it finds the pause not over and sends nothing;
    the task's next run after the pause sends the SMS."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    sms = ended_call(gateway)
    gateway.answers.append((503, b""))
    tasks.send_sms.apply(args=[sms.pk])
    sms.refresh_from_db()
    assert (sms.state, sms.attempts, len(gateway.received)) == ("pending", 1, 1)
    assert sms.next_try_at > timezone.now() + dt.timedelta(seconds=20)
    TicketMessage.objects.filter(pk=sms.pk).update(next_try_at=timezone.now())  # the pause is over
    tasks.send_sms.apply(args=[sms.pk])
    sms.refresh_from_db()
    assert (sms.state, sms.attempts, len(gateway.received)) == ("sent", 2, 2)


def test_two_runs_send_one_sms(gateway):
    sms = ended_call(gateway)
    assert tasks.send_sms.apply(args=[sms.pk]).successful()
    assert tasks.send_sms.apply(args=[sms.pk]).successful()  # a redelivered task: nothing to do
    assert ticket_sms_send(message_id=sms.pk, now=later(CLAIM_SECONDS + 1)) is None
    sms.refresh_from_db()
    assert (sms.state, sms.attempts, len(gateway.received)) == ("sent", 1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_second_worker_finds_the_sms_claimed_while_the_first_waits_for_the_gateway(gateway, monkeypatch):
    queued = []  # out of a test transaction the end's on_commit runs at once: its task kept here
    monkeypatch.setattr(tasks.send_sms, "delay", queued.append)
    sms = ended_call(gateway)
    assert queued == [sms.pk]
    TicketMessage.objects.filter(pk=sms.pk).update(created_at=later(-3600))  # what the sweep would take
    gateway.slow = 1
    first = threading.Thread(target=lambda: (ticket_sms_send(message_id=sms.pk), connection.close()))
    first.start()
    try:
        assert gateway.arrived.wait(10), "the first worker never reached the gateway"
        assert ticket_sms_send(message_id=sms.pk) is None  # a second task meanwhile
        assert ticket_sms_lost() == []  # nor does the sweep take it
    finally:
        gateway.release.set()
        first.join(10)
    sms.refresh_from_db()
    assert (sms.state, sms.attempts, len(gateway.received)) == ("sent", 1, 1)


def test_a_send_that_outlived_its_claim_leaves_the_new_owners_outcome(gateway, monkeypatch):
    """A worker stalled past its claim: the SMS was taken over and failed for good meanwhile; the
    stalled send's answer, when it comes, writes nothing."""
    sms = ended_call(gateway)
    real_provider = messages.sms_provider

    def taken_over_during_the_send(sms_settings):
        TicketMessage.objects.filter(pk=sms.pk).update(
            state="failed", last_error="taken over", next_try_at=None
        )
        return real_provider(sms_settings)

    monkeypatch.setattr(messages, "sms_provider", taken_over_during_the_send)
    assert ticket_sms_send(message_id=sms.pk) is None
    sms.refresh_from_db()
    assert (sms.state, sms.last_error, sms.provider_reference) == ("failed", "taken over", "")
    assert len(gateway.received) == 1


def test_the_sweep_takes_up_only_sms_whose_task_was_lost(gateway):
    lost = ended_call(gateway)
    fresh = ended_call(gateway)
    overdue_retry = ended_call(gateway)
    waiting_retry = ended_call(gateway)
    dead_worker = ended_call(gateway)
    sent = ended_call(gateway)
    old = later(-3600)
    TicketMessage.objects.filter(
        pk__in=[lost.pk, overdue_retry.pk, waiting_retry.pk, dead_worker.pk, sent.pk]
    ).update(created_at=old)
    TicketMessage.objects.filter(pk=overdue_retry.pk).update(attempts=1, next_try_at=later(-120))
    TicketMessage.objects.filter(pk=waiting_retry.pk).update(attempts=1, next_try_at=later(-10))
    TicketMessage.objects.filter(pk=dead_worker.pk).update(attempts=1, next_try_at=later(CLAIM_SECONDS - 5))
    TicketMessage.objects.filter(pk=sent.pk).update(state="sent")
    TicketMessage.objects.filter(channel="im").update(created_at=old)
    assert ticket_sms_lost() == [lost.pk, overdue_retry.pk]
    # The dead worker's claim runs out: its SMS is taken up too.
    assert ticket_sms_lost(now=later(CLAIM_SECONDS + 60)) == [
        lost.pk,
        overdue_retry.pk,
        waiting_retry.pk,
        dead_worker.pk,
        fresh.pk,
    ]
    assert fresh.pk not in ticket_sms_lost()


def test_the_beat_task_sends_what_was_lost(gateway, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    lost = ended_call(gateway)
    fresh = ended_call(gateway)
    TicketMessage.objects.filter(pk=lost.pk).update(created_at=later(-3600))
    tasks.send_due_sms.apply()
    states = dict(TicketMessage.objects.filter(channel="sms").values_list("pk", "state"))
    assert states == {lost.pk: "sent", fresh.pk: "pending"} and len(gateway.received) == 1


def test_the_console_provider_marks_the_sms_sent_and_logs_it(caplog):
    sms = ended_call(provider="console")
    with caplog.at_level(logging.INFO, logger="tickets.sms"):
        tasks.send_sms.apply(args=[sms.pk])
    sms.refresh_from_db()
    assert (sms.state, sms.delivery_status) == ("sent", "logged")
    assert (
        f"SMS to 393470000732 (console provider, not sent) {sms.provider_reference}: {sms.body}"
        in caplog.text
    )


@pytest.mark.parametrize("change", ["none", "deleted"])
def test_sms_settings_switched_off_after_the_call_fail_the_sms_for_good(change):
    sms = ended_call(provider="console")
    company_settings = sms.call.line.company.sms_settings
    if change == "none":
        company_settings.provider = "none"
        company_settings.save()
    else:
        company_settings.delete()
    tasks.send_sms.apply(args=[sms.pk])
    sms.refresh_from_db()
    assert (sms.state, sms.last_error) == ("failed", "the company sends no SMS (provider: none)")


def test_a_private_gateway_fails_the_sms_for_good_unless_allowed(gateway, settings):
    sms = ended_call(gateway)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    ticket_sms_send(message_id=sms.pk)
    sms.refresh_from_db()
    assert sms.state == "failed" and sms.last_error.startswith("refused: ")
    assert gateway.received == []


def test_the_technicians_own_credentials_are_used(gateway):
    sms = ended_call(gateway, sms_username="bruno", sms_password="b-pass")
    settings = sms.call.line.company.sms_settings
    settings.parameters = "to={to}\nuser={username}\npass={password}"
    settings.username, settings.secret = "acme", "acme-pass"
    settings.save()
    ticket_sms_send(message_id=sms.pk)
    assert dict(gateway.received[0].form) == {"to": "393470000732", "user": "bruno", "pass": "b-pass"}


def test_an_im_row_or_a_missing_row_is_not_the_tasks():
    sms = ended_call(provider="console")
    im = TicketMessage.objects.get(channel="im")
    assert ticket_sms_send(message_id=im.pk) is None
    assert ticket_sms_send(message_id=sms.pk + 1000) is None
    im.refresh_from_db()
    assert (im.state, im.attempts) == ("pending", 0)
    assert tasks.send_sms.apply(args=[sms.pk + 1000]).successful()


def test_the_sweep_is_a_default_schedule_that_a_migration_installs():
    name = "send ticket SMS left pending"
    assert django_settings.BEAT_SCHEDULE_DEFAULTS[name] == {"task": "tickets.send_due_sms", "schedule": 60.0}
    PeriodicTask.objects.filter(name=name).delete()
    migration = importlib.import_module("tickets.migrations.0002_sms_schedule")
    migration.install(MigrationLoader(connection).project_state(("tickets", "0002_sms_schedule")).apps, None)
    task = PeriodicTask.objects.get(name=name)
    assert (task.task, task.interval.every, task.interval.period, task.enabled) == (
        "tickets.send_due_sms",
        60,
        "seconds",
        True,
    )
