"""The lease services alone: epochs, renewals, take-overs, and the fence every per-server write checks."""

import datetime as dt
import threading
import time

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from telephony import process
from telephony.models import CallRecord, PbxServer
from telephony.services import calls, servers
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db


def take(server, owner, held=None, take_over=True):
    return servers.pbx_server_lease_take(server_id=server.pk, owner=owner, held=held, take_over=take_over)


def lapse(server):
    PbxServer.objects.filter(pk=server.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))


def newchannel(uniqueid):
    return {
        "Event": "Newchannel",
        "Uniqueid": uniqueid,
        "Linkedid": uniqueid,
        "Channel": f"PJSIP/100-{uniqueid}",
        "CallerIDNum": "100",
        "Exten": "200",
        "_received": time.time(),
    }


def test_a_take_over_starts_a_new_epoch_and_a_renewal_keeps_it():
    server = PbxServerFactory()
    first = take(server, "a").lease
    assert first.epoch == 1
    assert take(server, "a", held=first).lease == first
    look = take(server, "b")
    assert look.lease is None and look.holder_expires_at > timezone.now()
    lapse(server)
    second = take(server, "b").lease
    assert (second.owner, second.epoch) == ("b", 2)
    assert take(server, "a", held=first).lease is None  # the old owner learns it lost


def test_an_owner_renews_a_lease_that_lapsed_while_nobody_took_it():
    server = PbxServerFactory()
    lease = take(server, "a").lease
    lapse(server)
    assert take(server, "a", held=lease).lease == lease
    assert PbxServer.objects.get(pk=server.pk).lease_expires_at > timezone.now()


def test_a_lapsed_lease_is_not_taken_by_a_look_after_a_busy_database():
    server = PbxServerFactory()
    take(server, "a")
    lapse(server)
    assert take(server, "b", take_over=False).lease is None
    assert PbxServer.objects.get(pk=server.pk).lease_owner == "a"
    # A released lease has no owner left to wait for.
    PbxServer.objects.filter(pk=server.pk).update(lease_owner="", lease_expires_at=None)
    assert take(server, "b", take_over=False).lease.owner == "b"


def test_a_lost_lease_folds_reconciles_and_reports_nothing():
    server = PbxServerFactory()
    old = take(server, "a").lease
    lapse(server)
    new = take(server, "b").lease
    with pytest.raises(servers.LeaseLost):
        calls.call_events_fold(server_id=server.pk, events=[newchannel("u-old")], lease=old)
    assert not CallRecord.objects.filter(uniqueid="u-old").exists()
    calls.call_events_fold(server_id=server.pk, events=[newchannel("u-new")], lease=new)
    assert CallRecord.objects.get(uniqueid="u-new").state == "ringing"
    later = timezone.now() + dt.timedelta(seconds=1)
    with pytest.raises(servers.LeaseLost):
        calls.call_records_reconcile(server_id=server.pk, live_uniqueids=set(), listed_at=later, lease=old)
    assert CallRecord.objects.get(uniqueid="u-new").ended_at is None
    assert not servers.pbx_server_state_set(server_id=server.pk, owner="a", state="down", lease=old)
    servers.pbx_server_lease_release(server_id=server.pk, owner="a", lease=old)
    row = PbxServer.objects.get(pk=server.pk)
    assert (row.lease_owner, row.lease_epoch, row.state) == ("b", 2, "unknown")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL only")
def test_a_look_at_a_row_held_by_a_frozen_owner_fails_as_busy_rather_than_waiting(settings):
    """A frozen owner mid-fold holds the server's row: the standby's look gives up within the wait a
    look allows (the caller's busy path), rather than waiting as long as the owner stays frozen."""
    settings.PBX_LEASE_SECONDS, settings.PBX_LEASE_RENEW_SECONDS = 2.0, 0.5
    server = PbxServerFactory()
    lease = take(server, "a").lease
    holding, release = threading.Event(), threading.Event()

    def frozen_owner_mid_fold():
        try:
            with transaction.atomic():
                servers.pbx_server_lease_check(lease=lease)
                holding.set()
                release.wait(30)
        finally:
            connections.close_all()

    owner = threading.Thread(target=frozen_owner_mid_fold)
    owner.start()
    try:
        assert holding.wait(10)
        threading.Timer(5, release.set).start()  # without a lock timeout, the look waits this long
        asked = time.monotonic()
        with pytest.raises(OperationalError):
            take(server, "b")
        assert time.monotonic() - asked < 2.5
    finally:
        release.set()
        owner.join()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting")
def test_the_pbx_process_sessions_end_a_transaction_idle_past_a_lease(settings):
    def idle_timeout():
        with connection.cursor() as cursor:
            cursor.execute("SHOW idle_in_transaction_session_timeout")
            return cursor.fetchone()[0]

    try:
        assert process._in_thread(idle_timeout, {}) == f"{settings.PBX_LEASE_SECONDS}s"
    finally:
        connections.close_all()
