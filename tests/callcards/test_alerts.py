"""Low-balance alerts: each holder told once, each company's daily digest in its own time zone, and a
mail server that is down delays an alert, never loses it nor sends it twice (Django's locmem backend
stands in for SMTP; a backend that raises for a server that is down)."""

import datetime as dt
import io
import re
import socket

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db.models import QuerySet
from django.utils import timezone

from callcards import tasks
from callcards.lifecycle import Status
from callcards.models import CallcardSettings, LowBalanceAlert
from callcards.services import alerts
from tests.callcards.factories import CardFactory
from tests.factories import CompanyFactory
from tests.outbox import DOWN, REFUSES, rival_once

pytestmark = pytest.mark.django_db

Kind, State = LowBalanceAlert.Kind, LowBalanceAlert.State


def holder(**kwargs):
    kwargs.setdefault("email", "ada@example.com")
    kwargs.setdefault("balance_minutes", 4)
    return CardFactory(**kwargs)


def later(minutes):
    return timezone.now() + dt.timedelta(minutes=minutes)


# The holder's alert


def test_a_holder_is_mailed_once_when_the_card_runs_low():
    company = CompanyFactory(name="Advice Line")
    card = holder(company=company, balance_minutes=5, name="Ada", did="5551000", pin="31415926")
    plenty = holder(company=company, balance_minutes=6)

    tasks.low_balance_alerts()
    tasks.low_balance_alerts()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.com"]
    assert message.subject == f"Your call card {card.card_id}: 5 minutes left"
    assert "Hello Ada," in message.body
    assert f"Your call card {card.card_id} from Advice Line has 5 minutes of talk time left." in message.body
    assert "keep calling 5551000" in message.body
    assert "31415926" not in message.body + message.subject  # never the PIN
    assert message.reply_to == [company.billing_email]
    alert = LowBalanceAlert.objects.get()
    assert (alert.kind, alert.card, alert.state, alert.attempts) == (Kind.HOLDER, card, State.SENT, 1)
    assert alert.balance_minutes == 5 and alert.sent_at is not None and alert.next_try_at is None
    assert not plenty.alerts.exists()


def test_a_card_that_runs_low_later_is_told_then_and_never_again():
    card = holder(balance_minutes=12)
    tasks.low_balance_alerts()
    assert mail.outbox == []

    card.balance_minutes = 3  # a call billed
    card.save()
    tasks.low_balance_alerts()
    card.balance_minutes = 1  # another one
    card.save()
    tasks.low_balance_alerts()

    assert [m.subject for m in mail.outbox] == [f"Your call card {card.card_id}: 3 minutes left"]


def test_the_companys_threshold_decides_and_zero_never_alerts():
    strict = CompanyFactory()
    CallcardSettings.objects.create(company=strict, low_balance_minutes=2)
    silent = CompanyFactory()
    CallcardSettings.objects.create(company=silent, low_balance_minutes=0)
    at_threshold = holder(company=strict, balance_minutes=2)
    above = holder(company=strict, balance_minutes=3)
    empty_but_silent = holder(company=silent, balance_minutes=0, status=Status.EMPTY)

    tasks.low_balance_alerts()

    assert [m.subject for m in mail.outbox] == [f"Your call card {at_threshold.card_id}: 2 minutes left"]
    assert not above.alerts.exists() and not empty_but_silent.alerts.exists()


@pytest.mark.parametrize(
    "status, told",
    [
        (Status.ACTIVE, True),
        (Status.USED, True),
        (Status.EMPTY, True),  # emptied by one long call: it fell below the threshold too
        (Status.GENERATE, False),
        (Status.PRINT, False),
        (Status.SHIP, False),
        (Status.HOLD, False),
        (Status.VOID, False),
        (Status.CANCEL, False),
    ],
)
def test_only_cards_in_a_holders_hands_are_alerted(status, told):
    card = holder(status=status, balance_minutes=0 if status == Status.EMPTY else 2)
    tasks.low_balance_alerts()
    assert card.alerts.exists() is told
    assert len(mail.outbox) == int(told)


def test_no_email_no_alert_and_an_inactive_company_sends_none():
    holder(email="")
    holder(company=CompanyFactory(active=False))
    tasks.low_balance_alerts()
    assert mail.outbox == [] and not LowBalanceAlert.objects.exists()


def test_an_empty_card_says_no_minutes_left():
    card = holder(balance_minutes=0, status=Status.EMPTY)
    tasks.low_balance_alerts()
    assert mail.outbox[0].subject == f"Your call card {card.card_id}: no minutes left"
    assert "has no talk time left" in mail.outbox[0].body


@pytest.mark.parametrize(
    "language, subject, line",
    [
        ("fr", "Votre carte d'appel {id} : plus que 1 minute", "Il reste 1 minute de communication"),
        ("de", "Ihre Telefonkarte {id}: noch 1 Minute", "sind noch 1 Minute Gesprächszeit übrig"),
        ("es", "Su tarjeta de llamadas {id}: queda 1 minuto", "le queda 1 minuto de conversación"),
        ("it", "La sua carta telefonica {id}: resta 1 minuto", "resta 1 minuto di conversazione"),
    ],
)
def test_the_holder_reads_the_cards_language(language, subject, line):
    card = holder(language=language, balance_minutes=1)
    tasks.low_balance_alerts()
    assert mail.outbox[0].subject == subject.format(id=card.card_id)
    assert line in mail.outbox[0].body


def test_a_company_name_with_a_line_break_stays_one_subject_line():
    card = holder(company=CompanyFactory(name="Evil\r\nBcc: victim@example.com"))
    LowBalanceAlert.objects.create(kind=Kind.HOLDER, company=card.company, card=card, to=card.email)
    # The digest's subject carries the company's name.
    LowBalanceAlert.objects.create(
        kind=Kind.DIGEST, company=card.company, day=dt.date(2026, 12, 7), to="ops@example.com"
    )
    alerts.alerts_send_pending()
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert "\n" not in message.subject and "\r" not in message.subject
        assert message.recipients() in (["ada@example.com"], ["ops@example.com"])


# A mail server that is down


def test_a_server_down_leaves_the_alert_pending_and_a_later_run_sends_it(settings):
    card = holder()
    settings.EMAIL_BACKEND = DOWN
    tasks.low_balance_alerts()

    alert = LowBalanceAlert.objects.get()
    assert (alert.state, alert.attempts, alert.sent_at) == (State.PENDING, 1, None)
    assert alert.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert alert.next_try_at > timezone.now()
    tasks.low_balance_alerts()  # within the pause: not tried again
    alert.refresh_from_db()
    assert alert.attempts == 1

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    report = alerts.alerts_send_pending(now=later(2))

    assert report.sent == 1 and len(mail.outbox) == 1 and mail.outbox[0].to == [card.email]
    alert.refresh_from_db()
    assert (alert.state, alert.attempts, alert.last_error) == (State.SENT, 2, "")
    tasks.low_balance_alerts()
    assert len(mail.outbox) == 1


def test_the_real_smtp_backend_with_nobody_listening_leaves_the_alert_pending(settings):
    # A port that was free a moment ago: nothing listens on it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    holder()

    tasks.low_balance_alerts()

    alert = LowBalanceAlert.objects.get()
    assert (alert.state, alert.attempts) == (State.PENDING, 1)
    assert alert.last_error.startswith("ConnectionRefusedError")


def test_the_pause_after_each_failure_doubles_up_to_an_hour(settings):
    holder()
    settings.EMAIL_BACKEND = DOWN
    pauses = []
    now = timezone.now()
    alerts.holder_alerts_create()
    for _ in range(9):
        alerts.alerts_send_pending(now=now)
        alert = LowBalanceAlert.objects.get()
        pauses.append((alert.next_try_at - now).total_seconds())
        now = alert.next_try_at
    assert pauses == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert alert.attempts == 9 and alert.state == State.PENDING


def test_a_server_down_stops_the_run_and_leaves_the_other_alerts_untried(settings):
    for n in range(3):
        holder(email=f"holder{n}@example.com")
    settings.EMAIL_BACKEND = DOWN
    alerts.holder_alerts_create()
    report = alerts.alerts_send_pending()

    assert (report.sent, report.failed, report.server_down) == (0, 1, True)
    assert sorted(LowBalanceAlert.objects.values_list("attempts", flat=True)) == [0, 0, 1]
    assert set(LowBalanceAlert.objects.values_list("state", flat=True)) == {State.PENDING}


def test_a_refused_mailbox_does_not_hold_up_the_others(settings):
    holder(email="gone@example.com")
    ok = holder(email="ok@example.com")
    settings.EMAIL_BACKEND = REFUSES
    tasks.low_balance_alerts()

    assert [m.to for m in mail.outbox] == [[ok.email]]
    refused = LowBalanceAlert.objects.get(to="gone@example.com")
    assert refused.state == State.PENDING and refused.attempts == 1
    assert refused.last_error.startswith("SMTPRecipientsRefused")


# Two workers at once


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_one_mail(monkeypatch):
    card = holder()
    alerts.holder_alerts_create()
    # A second worker's run starts while the first one is sending.
    rival = rival_once(monkeypatch, LocmemBackend, "send_messages", alerts.alerts_send_pending)

    report = alerts.alerts_send_pending()

    assert report.sent == 1 and rival["result"].sent == 0
    assert [m.to for m in mail.outbox] == [[card.email]]
    alert = LowBalanceAlert.objects.get()
    assert alert.state == State.SENT and alert.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_two_runs_writing_the_alerts_at_once_write_one(monkeypatch):
    card = holder()
    rival = rival_once(monkeypatch, QuerySet, "bulk_create", alerts.holder_alerts_create)

    alerts.holder_alerts_create()  # found the card before the rival wrote its alert

    assert rival["result"] == 1
    assert LowBalanceAlert.objects.filter(card=card).count() == 1
    alerts.alerts_send_pending()
    assert len(mail.outbox) == 1


def test_a_claim_left_by_a_dead_worker_is_taken_up_once_it_runs_out():
    holder()
    alerts.holder_alerts_create()
    alert = LowBalanceAlert.objects.get()
    assert alerts._claim(alert.pk, timezone.now())  # the worker dies before it sends

    assert alerts.alerts_send_pending().sent == 0
    assert alerts.alerts_send_pending(now=later(alerts.CLAIM_SECONDS / 60 + 1)).sent == 1
    alert.refresh_from_db()
    assert alert.state == State.SENT and alert.attempts == 2


# The company's daily digest

# 20:00 UTC: 09:00 the next day in Auckland, noon in Los Angeles, 05:00 the next day in Tokyo.
EVENING_UTC = dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC)


def test_each_company_gets_one_digest_a_day_from_8_in_its_time_zone():
    auckland = CompanyFactory(time_zone="Pacific/Auckland")
    los_angeles = CompanyFactory(time_zone="America/Los_Angeles")
    tokyo = CompanyFactory(time_zone="Asia/Tokyo")
    for company in (auckland, los_angeles, tokyo):
        holder(company=company, email="")

    alerts.digests_create(now=EVENING_UTC)
    alerts.digests_create(now=EVENING_UTC + dt.timedelta(minutes=30))

    days = dict(LowBalanceAlert.objects.filter(kind=Kind.DIGEST).values_list("company", "day"))
    assert days == {auckland.pk: dt.date(2026, 12, 8), los_angeles.pk: dt.date(2026, 12, 7)}
    alerts.digests_create(now=EVENING_UTC + dt.timedelta(hours=3))  # 08:00 in Tokyo
    alerts.digests_create(now=EVENING_UTC + dt.timedelta(hours=27))  # the next day, past 08:00 everywhere
    per_company = {
        company.pk: sorted(company.card_alerts.values_list("day", flat=True))
        for company in (auckland, los_angeles, tokyo)
    }
    assert per_company == {
        auckland.pk: [dt.date(2026, 12, 8), dt.date(2026, 12, 9)],
        los_angeles.pk: [dt.date(2026, 12, 7), dt.date(2026, 12, 8)],
        tokyo.pk: [dt.date(2026, 12, 8), dt.date(2026, 12, 9)],
    }


def test_the_digest_lists_the_cards_running_low_never_a_pin():
    company = CompanyFactory(name="Advice Line", time_zone="America/Los_Angeles")
    CallcardSettings.objects.create(company=company, low_balance_minutes=3, alert_email="ops@advice.example")
    low = holder(company=company, balance_minutes=1, name="Ada", pin="27182818")
    lower = holder(company=company, balance_minutes=0, status=Status.USED, email="")
    holder(company=company, balance_minutes=4)  # above the threshold
    holder(company=company, balance_minutes=0, status=Status.EMPTY)  # used up: not running low
    other = holder(balance_minutes=1)  # another company's: its own digest

    alerts.digests_create(now=EVENING_UTC)
    alerts.alerts_send_pending(now=EVENING_UTC)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(["ops@advice.example", other.company.billing_email])
    message = next(m for m in mail.outbox if m.to == ["ops@advice.example"])
    assert message.subject == "Advice Line: 2 call cards running low on 2026-12-07"
    assert "2 call cards of Advice Line have 3 minutes or less left (2026-12-07)." in message.body
    lines = [line for line in message.body.splitlines() if re.match(r"\d{8,} ", line)]
    assert [line.split()[:3] for line in lines] == [
        [lower.card_id, "0", "Used"],
        [low.card_id, "1", "Active"],
    ]
    assert "Ada <ada@example.com>" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and f"<td>{low.card_id}</td>" in html
    assert "Ada &lt;ada@example.com&gt;" in html
    assert "27182818" not in message.body + html
    digest = company.card_alerts.get(kind=Kind.DIGEST)
    assert (digest.state, digest.cards, digest.day) == (State.SENT, 2, dt.date(2026, 12, 7))


def test_a_long_digest_lists_the_first_cards_and_counts_the_rest(monkeypatch):
    monkeypatch.setattr(alerts, "DIGEST_LINES", 2)
    company = CompanyFactory(time_zone="UTC")
    for balance in (3, 1, 2):
        holder(company=company, balance_minutes=balance)
    alerts.digests_create(now=EVENING_UTC)
    alerts.alerts_send_pending(now=EVENING_UTC)
    digest = next(m for m in mail.outbox if m.to == [company.billing_email])
    assert "3 call cards of" in digest.body and "... and 1 more." in digest.body


def test_the_digest_goes_to_the_billing_email_without_an_alert_email_and_nowhere_without_either():
    billing = CompanyFactory(time_zone="UTC")
    nowhere = CompanyFactory(time_zone="UTC", billing_email="")
    quiet = CompanyFactory(time_zone="UTC")
    CallcardSettings.objects.create(company=quiet, low_balance_minutes=0, alert_email="ops@quiet.example")
    none_low = CompanyFactory(time_zone="UTC")
    for company in (billing, nowhere, quiet):
        holder(company=company, email="")
    holder(company=none_low, balance_minutes=50, email="")

    alerts.digests_create(now=EVENING_UTC)
    alerts.alerts_send_pending(now=EVENING_UTC)

    assert [m.to for m in mail.outbox] == [[billing.billing_email]]


def test_a_digest_waits_for_a_server_down_and_is_sent_once(settings):
    company = CompanyFactory(time_zone="UTC")
    holder(company=company, email="")
    settings.EMAIL_BACKEND = DOWN
    alerts.digests_create(now=EVENING_UTC)
    alerts.alerts_send_pending(now=EVENING_UTC)
    digest = LowBalanceAlert.objects.get(kind=Kind.DIGEST)
    assert digest.state == State.PENDING and digest.attempts == 1 and "refused" in digest.last_error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alerts.digests_create(now=EVENING_UTC + dt.timedelta(hours=1))
    alerts.alerts_send_pending(now=EVENING_UTC + dt.timedelta(hours=1))
    alerts.alerts_send_pending(now=EVENING_UTC + dt.timedelta(hours=2))

    assert [m.to for m in mail.outbox] == [[company.billing_email]]
    digest.refresh_from_db()
    assert digest.state == State.SENT and digest.attempts == 2


# The schedules


def test_both_schedules_are_installed_editable_in_the_admin():
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    PeriodicTask.objects.all().delete()
    call_command("schedules", stdout=io.StringIO())  # what the data migration does on a fresh database

    holders = PeriodicTask.objects.get(task="callcards.low_balance_alerts")
    digests = PeriodicTask.objects.get(task="callcards.low_balance_digests")
    assert holders.interval.every == 300 and holders.interval.period == "seconds"
    assert digests.crontab.minute == "3" and digests.crontab.hour == "*"
    # The names beat sends are the tasks' own (a renamed task would leave beat sending nothing).
    assert {holders.task, digests.task} <= set(app.tasks)


def test_writing_costs_two_queries_and_sending_three_an_alert(django_assert_num_queries):
    company = CompanyFactory()
    for n in range(3):
        holder(company=company, email=f"holder{n}@example.com")
    with django_assert_num_queries(2):  # the cards running low, one insert
        assert alerts.holder_alerts_create() == 3
    # the due alerts, then for each: its claim, the alert with its card and company, SENT
    with django_assert_num_queries(1 + 3 * 3):
        assert alerts.alerts_send_pending().sent == 3
