"""The pbx process's lease under faults, with real `manage.py pbx` processes on pbxsim: an owner
frozen past its lease (SIGSTOP) writes nothing once a standby took over, a standby takes over as
soon as the lease lapses after a kill -9, a database locked longer than the lease costs the owner
nothing, and a PBX back from an outage is found within the reconnect cap."""

import datetime as dt
import re
import signal

import pytest
from django.db import transaction
from django.utils import timezone

from pbxsim.harness import free_port
from telephony import transitions
from telephony.models import CallRecord, PbxServer
from telephony.services.servers import ami_source
from telephony.testing import TcpProxy, wait_for
from tests.telephony.factories import PbxServerFactory
from tests.telephony.test_process_servers import (
    LEASE,
    RENEW,
    START_TIMEOUT,
    connected,
    pbx_commands,
    renewals_pass,
    row,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _short_leases(settings):
    settings.PBX_LEASE_SECONDS, settings.PBX_LEASE_RENEW_SECONDS = LEASE, RENEW


def owner_and_standby(server, commands):
    owner = wait_for(
        lambda: next((c for c in commands if c.owns(server)), None), timeout=START_TIMEOUT, what="an owner"
    )
    owner.logged_in(server)
    connected(server)
    return owner, next(c for c in commands if c is not owner)


def story(uniqueids) -> dict:
    """All a record says, by uniqueid: any write to it changes this."""
    return {
        r.uniqueid: (
            r.state,
            r.disposition,
            r.answered_at,
            r.ended_at,
            r.duration,
            r.billsec,
            r.hangup_cause,
            r.hangup_cause_text,
            r.updated_at,
        )
        for r in CallRecord.objects.filter(uniqueid__in=uniqueids)
    }


def test_an_owner_frozen_past_its_lease_writes_nothing_once_taken_over(server, facade, tmp_path):
    calls = [f"t-frozen-{n}" for n in range(3)]
    with pbx_commands(tmp_path, [], []) as commands:
        owner, standby = owner_and_standby(server, commands)
        for channel_id in calls:  # 5551005 answers at once and stays on the line
            facade.originate(server=server, channel_id=channel_id, number="5551005", context="platform-hold")
        wait_for(
            lambda: CallRecord.objects.filter(uniqueid__in=calls, state="answered").count() == len(calls),
            what="the calls to be answered",
        )
        epoch = row(server).lease_epoch
        owner.process.send_signal(signal.SIGSTOP)  # a long GC pause, a swapped VM, a stuck disk
        try:
            # The calls end while the owner is frozen: their Hangup and Cdr wait in its socket, unread.
            for channel in facade.live_channels(server=server):
                if channel["Uniqueid"] in calls:
                    facade.hangup(server=server, channel=channel["Channel"])
            wait_for(
                lambda: not [c for c in facade.live_channels(server=server) if c["Uniqueid"] in calls],
                what="the calls to end on the PBX",
            )
            # The takeover's timing is test_a_standby_takes_over_as_soon_as_the_lease_lapses's claim; here a
            # loaded machine (pytest -n) may starve the standby a while: wait for it, up to a start's time.
            wait_for(lambda: standby.owns(server), timeout=START_TIMEOUT, what="the takeover")
            standby.logged_in(server)
            # The new owner's reconcile closes what the PBX no longer lists, with what it knows.
            wait_for(
                lambda: (
                    CallRecord.objects.filter(uniqueid__in=calls, ended_at__isnull=False).count()
                    == len(calls)
                ),
                timeout=15,
                what="the standby's reconcile",
            )
            settled = story(calls)
        finally:
            owner.process.send_signal(signal.SIGCONT)
        # Awake, the old owner folds nothing of what it had queued: the records stay as settled.
        wait_for(
            lambda: story(calls) != settled or "event(s) dropped, not folded" in owner.output(),
            timeout=15,
            what="the old owner to let go",
        )
        assert story(calls) == settled
        dropped = re.search(r"stopped without its lease; (\d+) event\(s\) dropped", owner.output())
        assert dropped and int(dropped.group(1)) > 0, owner.output()
        assert standby.owns(server) and row(server).lease_epoch == epoch + 1
        renewals_pass(server)
        assert standby.owns(server)
    records = CallRecord.objects.filter(uniqueid__in=calls)
    assert {(r.state, r.hangup_cause_text) for r in records} == {("ended", transitions.LOST_TEXT)}


@pytest.mark.long
def test_a_standby_takes_over_as_soon_as_the_lease_lapses(server, facade, tmp_path, settings):
    # A renewal period close to the lease: a standby that looked only once a period would be late.
    lease, renew = 5, 4
    settings.PBX_LEASE_SECONDS, settings.PBX_LEASE_RENEW_SECONDS = lease, renew
    env = {"PBX_LEASE_SECONDS": str(lease), "PBX_LEASE_RENEW_SECONDS": str(renew)}
    with pbx_commands(tmp_path, [], [], env=env) as commands:
        owner, standby = owner_and_standby(server, commands)
        last = row(server).lease_expires_at
        wait_for(lambda: row(server).lease_expires_at > last, timeout=renew + 3, what="a renewal")
        lapses_at = row(server).lease_expires_at
        owner.process.send_signal(signal.SIGKILL)
        killed_at = timezone.now()
        owner.process.wait(5)
        wait_for(lambda: standby.owns(server), timeout=lease + renew + 5, what="the takeover")
        taken_at = row(server).lease_expires_at - dt.timedelta(seconds=lease)
        standby.logged_in(server)
        facade_ok = facade.originate(
            server=server, channel_id="t-after", number="5551001", context="platform-hold", wait=True
        )
    assert facade_ok.outcome == "answered"
    # Within the documented time (the lease) of the kill, and at once after the lease lapsed.
    assert taken_at - killed_at <= dt.timedelta(seconds=lease + 0.5)
    assert taken_at - lapses_at < dt.timedelta(seconds=1)


@pytest.mark.long
def test_a_lease_outlives_a_database_locked_longer_than_it(server, tmp_path):
    with pbx_commands(tmp_path, [], []) as commands:
        owner, standby = owner_and_standby(server, commands)
        epoch = row(server).lease_epoch
        for _ in range(2):
            # Another process holds a long write (a big import): SQLite's one write lock, or on
            # PostgreSQL the server's row. Nobody can renew or take a lease meanwhile.
            with transaction.atomic():
                PbxServer.objects.select_for_update().get(pk=server.pk)
                wait_for(
                    lambda: row(server).lease_expires_at < timezone.now() - dt.timedelta(seconds=RENEW),
                    timeout=LEASE + RENEW + 2,
                    what="the lease to lapse under the lock",
                )
            renewals_pass(server)
            assert owner.owns(server) and row(server).lease_epoch == epoch
        assert "letting go" not in owner.output()
        assert f"AMI {server.name}: connected" not in standby.output()


def test_a_pbx_back_from_an_outage_is_found_within_the_reconnect_cap(sim, facade, tmp_path):
    cap = 1
    proxy = TcpProxy("127.0.0.1", sim.port).start()
    server = PbxServerFactory(ami_port=proxy.port, agi_bind_port=sim.agi_port)
    direct = PbxServerFactory(ami_port=sim.port, agi_bind_port=free_port())
    try:
        with pbx_commands(tmp_path, [], env={"PBX_RECONNECT_MAX_SECONDS": str(cap)}) as (pbx,):
            pbx.logged_in(server)
            connected(server)
            facade.originate(server=server, channel_id="t-outage", number="5551005", context="platform-hold")
            wait_for(
                lambda: CallRecord.objects.filter(
                    source=ami_source(server), uniqueid="t-outage", state="answered"
                ).exists()
            )
            proxy.cut()  # mid-call; the PBX refuses every connection until restored
            # Long enough for an uncapped backoff (0.5, 1, 2, 4, 8 ... s) to pass the cap many times over.
            delays = lambda: [float(d) for d in re.findall(r"reconnecting in ([\d.]+) s", pbx.output())]  # noqa: E731
            wait_for(lambda: len(delays()) >= 7, timeout=12, what="the reconnect attempts")
            assert max(delays()) <= cap
            wait_for(
                lambda: not [c for c in facade.live_channels(server=direct) if c["Uniqueid"] == "t-outage"],
                what="the call to end on the PBX",
            )
            proxy.restore()
            wait_for(
                lambda: pbx.output().count(f"AMI {server.name}: connected") == 2,
                timeout=cap + 2,
                what="the reconnect",
            )
            record = wait_for(
                lambda: CallRecord.objects.filter(
                    source=ami_source(server), uniqueid="t-outage", ended_at__isnull=False
                ).first(),
                timeout=START_TIMEOUT,
                what="the reconcile",
            )
        assert record.hangup_cause_text == transitions.LOST_TEXT
    finally:
        proxy.close()
