"""The fold's writes in bulk (telephony.rows): one statement per batch and table, whatever the batch,
and nothing the fold promised lost on the way: the records' ids, every value as the ORM reads it,
a webhook delivery per transition built from its snapshot, calls seen twice, two servers at once."""

import datetime as dt
import re
import threading

import pytest
from django.db import connection, connections, transaction

from pbxsim.tracefile import ami_events
from telephony.events import CallEnded, CallSnapshot, CallStarted, OriginateResult
from telephony.models import CallRecord, WebhookDelivery
from telephony.rows import rows_of
from telephony.services import calls, originate
from tests.factories import CompanyFactory
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db

EPOCH = 1_795_422_307.0
RENAMED = ("Uniqueid", "DestUniqueid", "UniqueID", "Linkedid", "DestLinkedid", "BridgeUniqueid")
HOOK = "https://hooks.example.com/cc"


def claimed_calls(server, company, count, prefix="b"):
    """`count` recorded calls, each with its own ids, its originated leg claimed and sent."""
    events = []
    for n in range(count):
        record = originate.call_record_claim(
            server=server,
            uniqueid=f"{prefix}{n}-call-1-1",
            company=company,
            app="click2call",
            app_ref=f"request:{n}",
            callee="5551010",
            caller="5550000",
        )
        originate.call_record_send(record_id=record.pk)
        events += [
            {k: f"{prefix}{n}-{v}" if k in RENAMED else v for k, v in event.items()}
            for event in ami_events("click2call-completed", epoch=EPOCH)
        ]
    return events


# What a leg is, whichever server and company it was folded for.
LEG = [
    f.attname
    for f in CallRecord._meta.concrete_fields
    if f.name not in ("id", "source", "server", "parent", "company", "updated_at")
]


def legs(server):
    return sorted(CallRecord.objects.filter(server=server).values_list("parent__uniqueid", *LEG), key=repr)


def delivery_rows(company):
    return sorted(
        (d.payload["uniqueid"], d.event, sorted(d.payload.items()), d.url, d.status, d.attempts)
        for d in WebhookDelivery.objects.filter(company=company)
    )


def test_a_batch_mixing_claimed_and_new_legs_keeps_the_claimed_ids_and_tells_them():
    server, company = PbxServerFactory(), CompanyFactory()
    events = claimed_calls(server, company, 3)
    claimed = dict(CallRecord.objects.values_list("uniqueid", "pk"))
    typed = calls.call_events_fold(server_id=server.pk, events=events)
    records = {r.uniqueid: r for r in CallRecord.objects.filter(server=server)}
    # The claims were updated in place, the legs Asterisk made were added once each.
    assert {uid: records[uid].pk for uid in claimed} == claimed
    assert len(records) == 6
    for n in range(3):
        leg = CallRecord.objects.get(parent_id=claimed[f"b{n}-call-1-1"])
        assert (leg.company, leg.app, leg.app_ref) == (company, "click2call", f"request:{n}")
    # The ids apps are told are the records' own, and each snapshot is what was committed for it
    # (the last event of each leg: its CallEnded).
    assert {e.record.uniqueid: e.record.id for e in typed} == {uid: r.pk for uid, r in records.items()}
    for event in typed:
        if isinstance(event, CallEnded):
            assert event.record == CallSnapshot.of(records[event.record.uniqueid])


def test_one_statement_per_table_whatever_the_size_of_the_batch(django_assert_num_queries):
    server, company = PbxServerFactory(), CompanyFactory(webhook_url=HOOK)
    one, many = claimed_calls(server, company, 1, "one"), claimed_calls(server, company, 40, "many")
    # The placeholders' INSERT, the records' SELECT, their UPDATE, the webhook companies' SELECT,
    # the deliveries' INSERT, inside the batch's transaction (a savepoint under the test's); on
    # PostgreSQL one pg_notify more for the Originate outcomes a facade may wait for.
    statements = 8 if connection.vendor == "postgresql" else 7
    with django_assert_num_queries(statements):
        calls.call_events_fold(server_id=server.pk, events=one)
    with django_assert_num_queries(statements):
        calls.call_events_fold(server_id=server.pk, events=many)
    assert WebhookDelivery.objects.filter(company=company).count() == 41 * 6


def test_the_same_call_twice_in_one_batch_is_folded_once_and_told_once():
    once, twice = PbxServerFactory(), PbxServerFactory()
    company_once, company_twice = CompanyFactory(webhook_url=HOOK), CompanyFactory(webhook_url=HOOK)
    told_once = calls.call_events_fold(server_id=once.pk, events=claimed_calls(once, company_once, 2))
    events = claimed_calls(twice, company_twice, 2)
    told_twice = calls.call_events_fold(server_id=twice.pk, events=events + events)
    assert legs(once) == legs(twice)
    # The transitions, each told once (an OriginateResponse seen twice is answered twice, as
    # across batches: OriginateResult is the PBX's answer, not a transition).
    told = [
        [(type(e), e.record.uniqueid) for e in typed if not isinstance(e, OriginateResult)]
        for typed in (told_once, told_twice)
    ]
    assert told[0] == told[1]
    assert delivery_rows(company_once) == delivery_rows(company_twice)


def test_a_webhook_delivery_per_transition_as_if_each_event_were_its_own_batch():
    """Folded in one batch, a call's deliveries carry the same payloads as when every event is a
    batch of its own: each built from the leg as it was at its transition."""
    alone, together = PbxServerFactory(), PbxServerFactory()
    company_alone, company_together = CompanyFactory(webhook_url=HOOK), CompanyFactory(webhook_url=HOOK)
    for event in claimed_calls(alone, company_alone, 1):
        calls.call_events_fold(server_id=alone.pk, events=[event])
    calls.call_events_fold(server_id=together.pk, events=claimed_calls(together, company_together, 1))
    together_rows = delivery_rows(company_together)
    assert together_rows == delivery_rows(company_alone)
    events = [(uid, event) for uid, event, *_ in together_rows]
    assert events.count(("b0-call-1-1", "ringing")) == 1
    payloads = {event: dict(payload) for uid, event, payload, *_ in together_rows if uid == "b0-call-1-1"}
    assert (payloads["ringing"]["disposition"], payloads["answer"]["disposition"]) == ("PENDING", "ANSWERED")
    assert payloads["ringing"]["duration"] == 0 < payloads["hangup"]["duration"]
    assert {d.status for d in WebhookDelivery.objects.filter(company=company_together)} == {"pending"}


def test_values_come_back_as_the_orm_wrote_them():
    """Times to the microsecond in UTC, caller IDs with quotes and accents, nulls: written by the
    bulk path, read by the ORM, equal to what the fold told."""
    server = PbxServerFactory()
    when = EPOCH + 0.123456
    events = [
        {
            "Event": "Newchannel",
            "Uniqueid": "u-1",
            "Linkedid": "u-1",
            "Channel": "PJSIP/o'brien-0001",
            "CallerIDNum": 'O\'Brien "ü" ;--',
            "Exten": "5551010",
            "_received": when,
        },
        {"Event": "Newstate", "Uniqueid": "u-1", "ChannelState": "6", "_received": when + 1.5},
    ]
    typed = calls.call_events_fold(server_id=server.pk, events=events)
    record = CallRecord.objects.get(uniqueid="u-1")
    assert record.caller == 'O\'Brien "ü" ;--'
    assert record.started_at == dt.datetime.fromtimestamp(when, dt.UTC)
    assert record.answered_at - record.started_at == dt.timedelta(seconds=1.5)
    assert (record.ended_at, record.hangup_cause) == (None, None)
    started = [e for e in typed if isinstance(e, CallStarted)]
    assert [e.record.started_at for e in started] == [record.started_at]
    assert typed[-1].record == CallSnapshot.of(record)


def test_a_batch_is_written_in_statements_of_the_same_text_whatever_its_size():
    """The database keeps statements compiled by their text (the sqlite3 module its last 128 per
    connection): a text for each batch size kept 50 MiB of them in the pbx process."""
    server, company = PbxServerFactory(), CompanyFactory(webhook_url=HOOK)

    def statements(count, prefix):
        texts = []

        def seen(execute, sql, params, many, context):
            texts.append(re.sub(r'SAVEPOINT "\w+"', "SAVEPOINT", sql))  # Django names each anew
            return execute(sql, params, many, context)

        events = claimed_calls(server, company, count, prefix)
        with connection.execute_wrapper(seen):
            calls.call_events_fold(server_id=server.pk, events=events)
        return texts

    one, many = statements(1, "one"), statements(40, "many")
    assert set(many) == set(one)
    assert len(many) == len(one)  # one statement a batch, not one a chunk of rows
    assert CallRecord.objects.filter(server=server, ended_at__isnull=False).count() == 2 * 41
    assert WebhookDelivery.objects.filter(company=company).count() == 41 * 6


def test_a_value_too_long_for_its_column_is_refused_not_cut():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite keeps any length in a varchar")
    rows = rows_of(CallRecord, ["caller"])
    record = CallRecord.objects.create(source="ami:0", uniqueid="u-long")
    with pytest.raises(Exception, match="too long"), transaction.atomic():
        rows.update([[record.pk, "9" * 81]])


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite holds the whole database a transaction")
def test_two_servers_fold_at_once_without_waiting_on_each_other(monkeypatch):
    """One fold holding its records' locks (between its SELECT ... FOR UPDATE and its UPDATE) keeps
    another server's fold waiting on nothing: no lock wider than the batch's own rows."""
    first, second = PbxServerFactory(), PbxServerFactory()
    company = CompanyFactory(webhook_url=HOOK)
    first_events, second_events = claimed_calls(first, company, 3), claimed_calls(second, company, 3)
    holding, release = threading.Event(), threading.Event()
    real_write = calls._write

    def held_write(records):
        if records and records[0].server_id == first.pk:
            holding.set()
            assert release.wait(30)
        real_write(records)

    monkeypatch.setattr(calls, "_write", held_write)
    errors = []

    def fold_first():
        try:
            calls.call_events_fold(server_id=first.pk, events=first_events)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=fold_first)
    thread.start()
    try:
        assert holding.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # a wait on the first fold's locks fails
        try:
            calls.call_events_fold(server_id=second.pk, events=second_events)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    finally:
        release.set()
        thread.join()
    assert errors == []
    for server in (first, second):
        assert CallRecord.objects.filter(server=server, ended_at__isnull=False).count() == 6
    assert WebhookDelivery.objects.filter(company=company).count() == 2 * 3 * 6


@pytest.mark.django_db(transaction=True)
def test_two_servers_folding_side_by_side_each_get_their_calls():
    """Two folding threads, one a server, batch after batch at once: every record right on both."""
    servers = [PbxServerFactory(), PbxServerFactory()]
    company = CompanyFactory(webhook_url=HOOK)
    streams = [claimed_calls(servers[0], company, 6), claimed_calls(servers[1], company, 6)]
    errors = []
    start = threading.Barrier(2)

    def fold(server, events):
        try:
            start.wait(10)
            for i in range(0, len(events), 40):
                calls.call_events_fold(server_id=server.pk, events=events[i : i + 40])
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=fold, args=pair) for pair in zip(servers, streams, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert legs(servers[0]) == legs(servers[1])
    assert len(legs(servers[0])) == 12
    assert CallRecord.objects.filter(ended_at__isnull=False).count() == 24
    assert WebhookDelivery.objects.filter(company=company).count() == 2 * 6 * 6
