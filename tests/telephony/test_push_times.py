"""Pushed event times: only plausible, ordered times in the documented formats are taken."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from telephony.models import CallRecord
from telephony.services import calls
from telephony.services import push as push_services
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db

URL = "/api/telephony/events/"


@pytest.fixture
def token(company):
    return push_services.push_token_create(company=company)


def push(client, token, **payload):
    payload.setdefault("sessionid", "s-1")
    return client.post(URL, payload, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token.key}")


# One "now" for the module, so that the seconds between two pushes are the ones the test wrote.
NOW = timezone.now().replace(microsecond=0)


def utc(delta_seconds=0) -> str:
    """A 'YYYY-MM-DD HH:MM:SS+00:00' time this many seconds from NOW."""
    when = NOW + dt.timedelta(seconds=delta_seconds)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def assert_refused(response, code):
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "event_time",
    [
        "9999-12-31 23:59:59+00:00",
        "9999-12-31 23:59:59-05:00",
        "0001-01-01 00:00:00",
        "0",
        "99999999999999999999",
        "9000-01-01 00:00:00",
        "1990-01-01 00:00:00",
    ],
)
def test_implausible_times_are_refused_with_a_stable_code(client, token, event_time):
    assert_refused(push(client, token, event="ringing", eventTime=event_time), "event_time_out_of_range")
    assert not CallRecord.objects.exists()


def test_a_time_more_than_a_day_ahead_or_before_the_company_is_refused(client, token):
    assert_refused(push(client, token, event="ringing", eventTime=utc(26 * 3600)), "event_time_out_of_range")
    token.company.__class__.objects.filter(pk=token.company.pk).update(
        created_at=timezone.now() - dt.timedelta(days=30)
    )
    assert_refused(
        push(client, token, event="ringing", eventTime=utc(-32 * 86400)), "event_time_out_of_range"
    )
    assert push(client, token, event="ringing", eventTime=utc(-29 * 86400)).status_code == 202


def test_answer_at_epoch_zero_and_hangup_far_ahead_bill_nothing(client, token):
    push(client, token, event="ringing", eventTime=utc(-60))
    assert_refused(push(client, token, event="answer", eventTime="0"), "event_time_out_of_range")
    assert_refused(
        push(client, token, event="hangup", eventTime="9000-01-01 00:00:00"), "event_time_out_of_range"
    )
    record = CallRecord.objects.get()
    assert (record.answered_at, record.ended_at, record.billsec) == (None, None, 0)


def test_a_call_longer_than_the_maximum_is_refused(client, token, settings):
    settings.PUSH_CALL_MAX_SECONDS = 3600
    push(client, token, event="ringing", eventTime=utc(-7200))
    push(client, token, event="answer", eventTime=utc(-7190))
    assert_refused(push(client, token, event="hangup", eventTime=utc(0)), "call_too_long")
    assert CallRecord.objects.get().ended_at is None
    assert push(client, token, event="hangup", eventTime=utc(-7200 + 3600)).status_code == 202
    assert CallRecord.objects.get().billsec == 3590


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("ringing", -60), ("hangup", -70)),  # hangup before ringing
        (("ringing", -60), ("answer", -70)),  # answer before ringing
        (("answer", -60), ("hangup", -70)),  # hangup before answer
        (("answer", -60), ("ringing", -50)),  # ringing after answer
        (("hangup", -60), ("ringing", -50)),  # ringing after hangup
        (("hangup", -60), ("answer", -50)),  # answer after hangup
    ],
)
def test_out_of_order_times_are_refused_and_change_nothing(client, token, first, second):
    assert push(client, token, event=first[0], eventTime=utc(first[1])).status_code == 202
    before = CallRecord.objects.values().get()
    assert_refused(push(client, token, event=second[0], eventTime=utc(second[1])), "event_out_of_order")
    assert CallRecord.objects.values().get() == before


def test_events_arriving_out_of_order_with_consistent_times_are_taken(client, token):
    push(client, token, event="hangup", eventTime=utc(-10))
    push(client, token, event="answer", eventTime=utc(-40))
    assert push(client, token, event="ringing", eventTime=utc(-50)).status_code == 202
    record = CallRecord.objects.get()
    assert (record.duration, record.billsec) == (40, 30)


@pytest.mark.parametrize(
    "event_time",
    [
        "١٧٩٥٤٢٢٣٠٧",  # Arabic-Indic digits
        "2026-W49-3 10:00:00",  # an ISO week date
        "2026-336 10:00:00",  # an ISO ordinal date
        "20261202T003000",  # ISO basic format: not documented, not taken
        "2026-12-02",  # no time of day
        "1e9",
        "nan",
    ],
)
def test_only_the_documented_formats_and_ascii_digits_are_taken(client, token, event_time):
    assert_refused(push(client, token, event="ringing", eventTime=event_time), "event_time_invalid")
    assert not CallRecord.objects.exists()


def test_documented_formats_are_taken(client, token):
    now = timezone.now().replace(microsecond=0)
    local = now.astimezone(token.company.tzinfo)
    formats = [
        str(int(now.timestamp())),
        f"{int(now.timestamp())}.25",
        local.strftime("%Y-%m-%d %H:%M:%S"),  # naive: the company's zone
        now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        now.astimezone(dt.timezone(dt.timedelta(hours=-5))).strftime("%Y-%m-%d %H:%M:%S-05:00"),
    ]
    for n, event_time in enumerate(formats):
        response = push(client, token, event="ringing", sessionid=f"f{n}", eventTime=event_time)
        assert response.status_code == 202, (event_time, response.content)
        assert CallRecord.objects.get(uniqueid=f"f{n}").started_at.replace(microsecond=0) == now


def test_the_pbx_clock_far_from_the_receipt_time_is_not_trusted(company):
    received = timezone.now().timestamp()
    events = [
        {
            "Event": "Newchannel",
            "Uniqueid": "1.1",
            "Channel": "PJSIP/a-1",
            "Timestamp": "253402300799.0",  # 9999-12-31
            "_received": received,
        }
    ]
    calls.call_events_fold(server_id=PbxServerFactory().pk, events=events)
    started = CallRecord.objects.get().started_at
    assert abs(started.timestamp() - received) < 1


def test_existing_impossible_rows_are_repaired_so_pages_render(client, company_user):
    import importlib

    from django.apps import apps

    company = company_user.company  # Europe/Paris: 9999-12-31 23:59:59 UTC is past the year 9999 there
    record = CallRecord.objects.create(
        source=f"push:{company.pk}",
        uniqueid="bad",
        company=company,
        started_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        answered_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        ended_at=dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        # As large as the column holds (PostgreSQL's integer): SQLite took the full 253402300799.
        duration=2**31 - 1,
        billsec=2**31 - 1,
    )
    repair = importlib.import_module("telephony.migrations.0002_clear_impossible_call_times")
    repair.clear_impossible_times(apps, None)
    record.refresh_from_db()
    assert (record.ended_at, record.duration, record.billsec) == (None, 0, 0)
    client.force_login(company_user)
    calls = reverse("telephony:calls", args=[company.slug])
    for url in (calls, f"{calls}?format=csv", reverse("telephony:call", args=[company.slug, record.pk])):
        assert client.get(url).status_code == 200
    assert client.get(f"/api/telephony/calls/{record.pk}/").status_code == 200
