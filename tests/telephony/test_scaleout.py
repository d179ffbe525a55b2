"""Scale-out: ten PBX servers (ten pbxsims) shared by three `manage.py pbx` processes on one
database. Two own five servers each (`--server`), the third (`--standby`) stands by for all ten,
started with them and leaving them the servers they name; every call is recorded once, and when
one owner is killed outright its five servers go to the standby within the lease, the other
owner's stay where they are, and the calls made after the takeover are recorded once too;
restarted, the killed owner gets its servers back when the standby is stopped cleanly. A few
calls per server: the test proves who folds what, the bench (bench/scaleout_bench.py) how fast."""

import datetime as dt
import signal

import pytest
from django.utils import timezone

from telephony.facade import PbxFacade
from telephony.models import CallRecord, PbxServer
from telephony.services.servers import ami_source, pbx_server_lease_release, pbx_server_lease_take
from telephony.testing import running_contract_pbxsim, side_by_side, wait_for
from tests.telephony.conftest import MANAGER_USERS, SCALE, TEST_CONTEXTS
from tests.telephony.factories import PbxServerFactory
from tests.telephony.test_process_servers import START_TIMEOUT, pbx_commands, row

pytestmark = pytest.mark.django_db(transaction=True)

SERVERS = 10
CALLS_PER_SERVER = 2
# Longer than the other lease tests' 2 s: thirteen processes share the cores here, and an owner
# that misses its renewals for a loaded second must not lose a server the test says it keeps.
LEASE, RENEW = 4, 1
LEASE_ENV = {"PBX_LEASE_SECONDS": str(LEASE), "PBX_LEASE_RENEW_SECONDS": str(RENEW)}
# The standby looks the moment a lease lapses; this much more for the look itself on a busy machine.
TAKEOVER_MARGIN = 1.0


@pytest.fixture(autouse=True)
def _leases(settings):
    settings.PBX_LEASE_SECONDS, settings.PBX_LEASE_RENEW_SECONDS = LEASE, RENEW


@pytest.fixture
def ten_servers(tmp_path):
    folders = [tmp_path / f"sim{number}" for number in range(SERVERS)]
    for folder in folders:
        folder.mkdir()
    simulators = (
        running_contract_pbxsim(
            folder, manager_users=MANAGER_USERS, extra_dialplans=[TEST_CONTEXTS], time_scale=SCALE
        )
        for folder in folders
    )
    with side_by_side(simulators) as sims:
        yield [
            PbxServerFactory(name=f"pbx{number}", ami_port=sim.port, agi_bind_port=sim.agi_port)
            for number, sim in enumerate(sims)
        ]


def owned_by(command, servers) -> bool:
    return all(command.owns(server) for server in servers)


def place_calls(facade, servers, prefix) -> dict[str, PbxServer]:
    """CALLS_PER_SERVER calls on each server (a phone that answers, talks 2 s and hangs up)."""
    placed = {}
    for server in servers:
        for number in range(CALLS_PER_SERVER):
            channel_id = f"{prefix}-{server.name}-{number}"
            facade.originate(server=server, channel_id=channel_id, number="5551001", context="platform-hold")
            placed[channel_id] = server
    return placed


def recorded_once(placed: dict[str, PbxServer]):
    """Every call ends as one answered record, on its own server, whoever folded it."""
    wait_for(
        lambda: CallRecord.objects.filter(uniqueid__in=placed, ended_at__isnull=False).count() == len(placed),
        timeout=START_TIMEOUT,
        what=f"{len(placed)} calls to be recorded",
    )
    records = list(CallRecord.objects.filter(uniqueid__in=placed))
    assert len(records) == len(placed)
    assert {r.uniqueid: r.source for r in records} == {c: ami_source(s) for c, s in placed.items()}
    assert {r.disposition for r in records} == {"ANSWERED"}
    # The phone talks 2 s; a simulator starved of CPU (a loaded CI counted up to 8) takes longer.
    assert min(r.billsec for r in records) >= 2


def test_ten_servers_three_processes_each_call_once_and_a_killed_owner_taken_over(ten_servers, tmp_path):
    first_half, second_half = ten_servers[:5], ten_servers[5:]
    facade = PbxFacade()
    names = lambda servers: [arg for s in servers for arg in ("--server", s.name)]  # noqa: E731
    try:
        # Started together, as at a boot: the standby leaves the free servers to those naming them.
        with pbx_commands(
            tmp_path, names(first_half), names(second_half), ["--standby"], env=LEASE_ENV
        ) as commands:
            owner_one, owner_two, standby = commands
            for command, servers in ((owner_one, first_half), (owner_two, second_half)):
                wait_for(
                    lambda c=command, s=servers: owned_by(c, s),
                    timeout=START_TIMEOUT,
                    what="the owners' leases",
                )
                for server in servers:
                    command.logged_in(server)
            before = place_calls(facade, ten_servers, "t-before")
            recorded_once(before)
            assert owned_by(owner_one, first_half) and owned_by(owner_two, second_half)
            epochs = {server.pk: row(server).lease_epoch for server in ten_servers}
            assert set(epochs.values()) == {1}  # each taken once, by its owner: none by the standby
            assert f"AMI {ten_servers[0].name}: connected" not in standby.output()

            owner_one.process.send_signal(signal.SIGKILL)
            killed_at = timezone.now()
            owner_one.process.wait(5)
            taken_at = {}

            def taken_over():
                # Read as soon as seen: a renewal (a period later) would move the expiry on.
                for server in first_half:
                    if server.name not in taken_at and standby.owns(server):
                        taken_at[server.name] = row(server).lease_expires_at - dt.timedelta(seconds=LEASE)
                return len(taken_at) == len(first_half)

            wait_for(
                taken_over,
                timeout=LEASE + RENEW + 10,
                what="the standby's takeover of the killed owner's servers",
            )
            for server in first_half:
                standby.logged_in(server)
            after = place_calls(facade, ten_servers, "t-after")
            recorded_once(after)
            # The survivor that was not killed kept its servers all along: no lease changed hands.
            assert owned_by(owner_two, second_half)
            assert {s.pk: row(s).lease_epoch for s in second_half} == {
                s.pk: epochs[s.pk] for s in second_half
            }
            assert {s.pk: row(s).lease_epoch for s in first_half} == {
                s.pk: epochs[s.pk] + 1 for s in first_half
            }
            for server in first_half:
                assert f"AMI {server.name}: connected" not in owner_two.output()
            for server in second_half:
                assert f"AMI {server.name}: connected" not in standby.output()

            # The hand-back: the killed owner, restarted as it was, waits while the standby holds
            # its servers; the standby stopped cleanly releases them, and it takes them at once.
            with pbx_commands(tmp_path, names(first_half), env=LEASE_ENV) as (restarted,):
                wait_for(lambda: "pbx process" in restarted.output(), timeout=START_TIMEOUT)
                assert owned_by(standby, first_half)
                standby.stop()
                wait_for(
                    lambda: owned_by(restarted, first_half),
                    timeout=RENEW + 10,
                    what="the restarted owner to take its servers back",
                )
                for server in first_half:
                    restarted.logged_in(server)
                back = place_calls(facade, ten_servers, "t-back")
                recorded_once(back)
                assert owned_by(owner_two, second_half)
    finally:
        facade.close()
    # Within the lease of the kill: the killed owner's last renewal came before it, so its leases
    # lapsed at most a lease later, and the standby looked then.
    for name, taken in taken_at.items():
        assert dt.timedelta(0) < taken - killed_at <= dt.timedelta(seconds=LEASE + TAKEOVER_MARGIN), name
    # Nothing but the calls placed: no record made twice, under another source or by a reconcile.
    assert CallRecord.objects.count() == len(before) + len(after) + len(back)


def take(server, owner, **patience):
    return pbx_server_lease_take(server_id=server.pk, owner=owner, **patience).lease


def test_a_standby_takes_a_free_server_only_once_its_owners_had_a_lease_to_take_it():
    server = PbxServerFactory()
    a_lease_ago = timezone.now() - dt.timedelta(seconds=LEASE)
    # Starting: its owners may still be booting.
    assert take(server, "standby", take_free=False) is None
    owner = take(server, "owner")
    pbx_server_lease_release(server_id=server.pk, owner="owner", lease=owner)
    # Just released (an owner restarting, a deploy): left to its owner for a lease.
    assert take(server, "standby", freed_before=a_lease_ago) is None
    assert take(server, "owner").epoch == owner.epoch + 1
    # Released longer ago than a lease: nobody came for it, the standby takes it.
    pbx_server_lease_release(server_id=server.pk, owner="owner")
    PbxServer.objects.filter(pk=server.pk).update(state_changed_at=a_lease_ago - dt.timedelta(seconds=1))
    assert take(server, "standby", freed_before=a_lease_ago).owner == "standby"


def test_a_standby_takes_a_dead_owners_lapsed_lease_at_once():
    server = PbxServerFactory()
    take(server, "owner")
    PbxServer.objects.filter(pk=server.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    lease = take(server, "standby", take_free=False, freed_before=timezone.now())
    assert (lease.owner, lease.epoch) == ("standby", 2)
