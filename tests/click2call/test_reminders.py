"""Reminders: a company is e-mailed once about a request waiting for its call back past the
campaign's reminder time; never twice, never for a request called back or completed first; a mail
server that is down delays it, never loses it. Django's locmem backend stands in for SMTP."""

import datetime as dt

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.urls import reverse
from django.utils import timezone

from click2call import tasks
from click2call.models import CallAttempt, CallReminder, CallRequest
from click2call.services import dialing, reminders
from config import outbox
from tests.click2call.factories import CallAttemptFactory, CallRequestFactory, CampaignFactory
from tests.factories import CompanyFactory, UserFactory
from tests.outbox import DOWN, REFUSES, rival_once
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

Status, State = CallRequest.Status, CallReminder.State


def ago(minutes):
    return timezone.now() - dt.timedelta(minutes=minutes)


def later(minutes):
    return timezone.now() + dt.timedelta(minutes=minutes)


def failed(*, waited=61, status=Status.FAILED_COMPANY, **kwargs):
    """A request out of automatic tries, failed `waited` minutes ago (its campaign reminds after 60)."""
    kwargs.setdefault("campaign__reminder_minutes", 60)
    return CallRequestFactory(status=status, tries=3, finished_at=ago(waited), **kwargs)


# Due, not due


@pytest.mark.parametrize("status", [Status.FAILED_COMPANY, Status.FAILED_USER])
def test_a_request_waiting_past_the_reminder_time_is_reminded_of_once(status, settings):
    settings.SITE_URL = "https://cc.example.com"
    call = failed(
        status=status,
        name="Ana Visitor",
        note="about the red bike",
        campaign__name="Spring sale",
        campaign__company__name="Bikes & Co",
        campaign__company__time_zone="Europe/Paris",
    )
    tasks.send_reminders()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [call.company.billing_email]
    assert message.subject == f"Bikes & Co: call back {call.number} (Spring sale)"
    for line in (call.number, "Ana Visitor", "about the red bike", "Spring sale", "(Europe/Paris)"):
        assert line in message.body
    link = "https://cc.example.com" + reverse("click2call:call", args=[call.company.slug, call.pk])
    assert link in message.body
    asked = timezone.localtime(call.created_at, call.company.tzinfo).strftime("%Y-%m-%d %H:%M")
    assert f"Asked:     {asked} (Europe/Paris)" in message.body
    since = timezone.localtime(call.finished_at, call.company.tzinfo).strftime("%Y-%m-%d %H:%M")
    assert f"to call back since {since} (Europe/Paris)" in message.body

    reminder = CallReminder.objects.get()
    assert (reminder.request, reminder.to, reminder.state, reminder.attempts) == (
        call,
        call.company.billing_email,
        State.SENT,
        1,
    )
    call.refresh_from_db()
    assert call.reminded_at is not None
    tasks.send_reminders()
    assert len(mail.outbox) == 1


def test_not_before_the_reminder_time():
    call = failed(waited=59)
    tasks.send_reminders()
    assert mail.outbox == [] and not CallReminder.objects.exists()

    reminders.reminders_create(now=later(2))
    reminders.reminders_send_pending(now=later(2))
    assert [m.to for m in mail.outbox] == [[call.company.billing_email]]


def test_a_reminder_due_over_a_week_ago_is_stale_and_not_sent():
    failed(waited=60 + 7 * 24 * 60 + 1)  # reminders switched on for a campaign of old failed requests
    recent = failed(waited=60 + 7 * 24 * 60 - 1)
    tasks.send_reminders()
    assert CallReminder.objects.get().request == recent and len(mail.outbox) == 1


def test_writing_and_sending_a_reminder_take_a_fixed_number_of_queries(django_assert_num_queries):
    for _ in range(3):
        failed()
    # the reminder times in use, the due requests; then each: a savepoint, the claim, the request
    # with its campaign and company, the insert, the savepoint released
    with django_assert_num_queries(2 + 3 * 5):
        assert reminders.reminders_create() == 3
    # the stale ones dropped, the due ones; then each: its claim, the reminder with its request,
    # campaign and company, SENT
    with django_assert_num_queries(2 + 3 * 3):
        assert reminders.reminders_send_pending().sent == 3


def test_each_campaign_has_its_own_reminder_time():
    quick = failed(waited=6, campaign__reminder_minutes=5)
    failed(waited=6, campaign__reminder_minutes=10)
    tasks.send_reminders()
    assert [m.to for m in mail.outbox] == [[quick.company.billing_email]]


@pytest.mark.parametrize("minutes", [None, 0])
def test_a_campaign_without_reminder_sends_none(minutes):
    failed(waited=10**5, campaign__reminder_minutes=minutes)
    tasks.send_reminders()
    assert mail.outbox == [] and not CallReminder.objects.exists()


@pytest.mark.parametrize("status", [Status.PENDING, Status.DIALING, Status.COMPLETED])
def test_a_request_not_waiting_for_the_company_gets_none(status):
    CallRequestFactory(status=status, finished_at=ago(10**4), campaign__reminder_minutes=1)
    tasks.send_reminders()
    assert mail.outbox == []


def test_the_campaigns_reminder_address_wins_over_the_billing_one():
    failed(campaign__reminder_email="callbacks@shop.example")
    tasks.send_reminders()
    assert [m.to for m in mail.outbox] == [["callbacks@shop.example"]]


def test_no_address_at_all_is_written_down_not_retried():
    call = failed(campaign__company__billing_email="")
    tasks.send_reminders()
    tasks.send_reminders()
    assert mail.outbox == []
    reminder = CallReminder.objects.get(request=call)
    assert reminder.state == State.DROPPED and reminder.last_error == reminders.NO_ADDRESS


def test_an_inactive_company_is_not_reminded():
    failed(campaign__company__active=False)
    tasks.send_reminders()
    assert mail.outbox == []


# Called back before the reminder is due


def _callback(call, *, outcome):
    user = UserFactory(company=call.company)
    attempt = dialing.request_callback(request=call, user=user)
    return dialing.attempt_finish(attempt_id=attempt.pk, status=outcome)


@pytest.mark.parametrize("outcome", [CallAttempt.Status.COMPLETED, CallAttempt.Status.FAILED_USER])
def test_a_request_called_back_before_its_reminder_gets_none(outcome):
    call = failed(waited=30)
    _callback(call, outcome=outcome)  # the company rang: done, or the visitor did not answer
    reminders.reminders_create(now=later(10**3))
    reminders.reminders_send_pending(now=later(10**3))
    assert mail.outbox == [] and not CallReminder.objects.exists()


def test_a_call_back_that_did_not_reach_the_company_waits_again_from_its_end():
    call = failed(waited=30, status=Status.FAILED_USER)
    _callback(call, outcome=CallAttempt.Status.FAILED_COMPANY)  # nobody at the company answered
    tasks.send_reminders()
    assert mail.outbox == []  # the wait starts again at the call back's end
    reminders.reminders_create(now=later(61))
    reminders.reminders_send_pending(now=later(61))
    assert len(mail.outbox) == 1


def test_a_request_being_called_back_is_not_reminded_of():
    call = failed()
    CallRequest.objects.filter(pk=call.pk).update(status=Status.DIALING)
    CallAttemptFactory(request=call, kind=CallAttempt.Kind.CALLBACK)
    tasks.send_reminders()
    assert mail.outbox == []


def test_a_pending_reminder_whose_request_was_called_back_meanwhile_is_dropped(settings):
    call = failed()
    settings.EMAIL_BACKEND = DOWN
    tasks.send_reminders()
    _callback(call, outcome=CallAttempt.Status.COMPLETED)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reminders.reminders_send_pending(now=later(5))
    assert mail.outbox == []
    reminder = CallReminder.objects.get()
    assert reminder.state == State.DROPPED and reminder.last_error == reminders.NOT_WAITING


# A mail server that is down


def test_smtp_down_then_up_delays_the_reminder_and_never_loses_it(settings):
    call = failed()
    settings.EMAIL_BACKEND = DOWN
    tasks.send_reminders()

    reminder = CallReminder.objects.get()
    assert (reminder.state, reminder.attempts, reminder.sent_at) == (State.PENDING, 1, None)
    assert reminder.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    first_pause = reminder.next_try_at
    tasks.send_reminders()  # within the pause: not tried again
    reminder.refresh_from_db()
    assert reminder.attempts == 1
    reminders.reminders_send_pending(now=later(2))  # down still: a longer pause
    reminder.refresh_from_db()
    assert reminder.attempts == 2 and reminder.next_try_at - later(2) > first_pause - timezone.now()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    report = reminders.reminders_send_pending(now=later(10))
    assert report.sent == 1 and [m.to for m in mail.outbox] == [[call.company.billing_email]]
    reminder.refresh_from_db()
    assert (reminder.state, reminder.attempts, reminder.last_error) == (State.SENT, 3, "")


def test_a_refused_mailbox_does_not_hold_up_the_others(settings):
    failed(campaign__reminder_email="gone@shop.example")
    ok = failed(campaign__reminder_email="ok@shop.example")
    settings.EMAIL_BACKEND = REFUSES
    tasks.send_reminders()
    assert [m.to for m in mail.outbox] == [["ok@shop.example"]]
    refused = CallReminder.objects.exclude(request=ok).get()
    assert refused.state == State.PENDING and refused.last_error.startswith("SMTPRecipientsRefused")


def test_a_reminder_deleted_with_its_request_while_claimed_is_skipped(monkeypatch):
    call = failed()
    reminders.reminders_create()
    claim = outbox.outbox_claim

    def claim_then_request_deleted(**kwargs):
        claimed = claim(**kwargs)
        CallRequest.objects.filter(pk=call.pk).delete()  # its reminder goes with it
        return claimed

    monkeypatch.setattr(outbox, "outbox_claim", claim_then_request_deleted)
    report = reminders.reminders_send_pending()
    assert (report.sent, report.failed, mail.outbox) == (0, 0, [])


# Two workers at once


@pytest.mark.django_db(transaction=True)
def test_two_runs_writing_reminders_at_once_write_one(monkeypatch):
    call = failed()
    # A second worker's run writes while the first has found the request and not claimed it yet.
    rival = rival_once(monkeypatch, reminders, "reminder_create", reminders.reminders_create)

    assert reminders.reminders_create() == 0
    assert rival["result"] == 1
    assert CallReminder.objects.filter(request=call).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_runs_sending_at_once_send_one_mail(monkeypatch):
    call = failed()
    reminders.reminders_create()
    rival = rival_once(monkeypatch, LocmemBackend, "send_messages", reminders.reminders_send_pending)

    report = reminders.reminders_send_pending()

    assert report.sent == 1 and rival["result"].sent == 0
    assert [m.to for m in mail.outbox] == [[call.company.billing_email]]
    assert CallReminder.objects.get().attempts == 1


# On the call's page and in the admin


def test_the_call_page_shows_its_reminder(client, settings):
    call = failed()
    settings.EMAIL_BACKEND = DOWN
    tasks.send_reminders()
    user = UserFactory(company=call.company)
    client.force_login(user)
    page_url = reverse("click2call:call", args=[call.company.slug, call.pk])

    body = client.get(page_url).content.decode()
    assert "Waiting to be sent" in body and "ConnectionRefusedError" in body
    assert call.company.billing_email in body

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reminders.reminders_send_pending(now=later(2))
    body = client.get(page_url).content.decode()
    assert "<dt>State</dt><dd>Sent</dd>" in body and "<dt>Attempts</dt><dd>2</dd>" in body
    assert_other_company_gets_404(client, page_url, owner=user)


def test_the_call_page_says_when_a_reminder_would_go(client):
    call = CallRequestFactory(status=Status.FAILED_USER, campaign__reminder_minutes=45)
    silent = CallRequestFactory(campaign__company=call.company, campaign__reminder_minutes=None)
    client.force_login(UserFactory(company=call.company))
    body = client.get(reverse("click2call:call", args=[call.company.slug, call.pk])).content.decode()
    assert "waits for a call back 45 minutes after it failed" in body
    body = client.get(reverse("click2call:call", args=[call.company.slug, silent.pk])).content.decode()
    assert "the campaign sends no reminders" in body


def test_another_companys_reminder_never_shows(client):
    mine = failed()
    failed(campaign__company=CompanyFactory(billing_email="theirs@other.example"))
    tasks.send_reminders()
    client.force_login(UserFactory(company=mine.company))
    body = client.get(reverse("click2call:call", args=[mine.company.slug, mine.pk])).content.decode()
    assert mine.company.billing_email in body and "theirs@other.example" not in body


def test_the_admin_lists_reminders_and_shows_them_on_the_request(admin_client):
    call = failed()
    tasks.send_reminders()
    body = admin_client.get(reverse("admin:click2call_callreminder_changelist")).content.decode()
    assert call.company.billing_email in body and "Sent" in body
    body = admin_client.get(reverse("admin:click2call_callrequest_change", args=[call.pk])).content.decode()
    assert "Call reminder" in body and call.company.billing_email in body


def test_the_campaign_page_says_where_reminders_go(client):
    campaign = CampaignFactory(reminder_minutes=30, reminder_email="callbacks@shop.example")
    silent = CampaignFactory(company=campaign.company, reminder_minutes=0)
    client.force_login(UserFactory(company=campaign.company))

    def page_of(shown):
        address = reverse("click2call:campaign", args=[shown.company.slug, shown.pk])
        return client.get(address).content.decode()

    said = "an e-mail to callbacks@shop.example about a request waiting for your call back 30 minutes"
    assert said in page_of(campaign)
    assert "<dt>Reminder</dt><dd>none</dd>" in page_of(silent)


def test_the_campaign_form_takes_an_empty_reminder_time(client):
    campaign = CampaignFactory()
    client.force_login(UserFactory(company=campaign.company))
    edit = reverse("click2call:campaign-edit", args=[campaign.company.slug, campaign.pk])
    form = client.get(edit).context["form"]
    kept = form.initial.items()
    data = {name: value for name, value in kept if value is not None and name != "message_file"}
    data.update(reminder_minutes="", reminder_email="callbacks@shop.example", tariff=campaign.tariff_id)
    response = client.post(edit, data)
    assert response.status_code == 302, response.context["form"].errors
    campaign.refresh_from_db()
    assert (campaign.reminder_minutes, campaign.reminder_email) == (None, "callbacks@shop.example")
