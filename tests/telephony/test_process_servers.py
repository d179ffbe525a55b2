"""The pbx process as a supervisor of PBX servers: one owner per server through the database lease, a
standby that takes over from a dead owner, `--server`, live reload of the admin's changes, and one
bad server that leaves the others alone. `manage.py pbx` runs as its own process where it matters
(two owners, kill -9), the in-process harness elsewhere; the PBX is pbxsim."""

import asyncio
import contextlib
import datetime as dt
import io
import os
import signal
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError
from django.utils import timezone

from pbxsim.harness import PROJECT_DIR, free_port
from telephony.models import CallRecord, PbxServer
from telephony.process import PbxProcess, ServerLink
from telephony.services.servers import Lease
from telephony.testing import TcpProxy, database_url, pbx_process, wait_for
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Short leases, so a takeover takes seconds; the children and the in-process harness alike.
LEASE, RENEW = 2, 1
START_TIMEOUT = 30


@pytest.fixture(autouse=True)
def _short_leases(settings):
    settings.PBX_LEASE_SECONDS, settings.PBX_LEASE_RENEW_SECONDS = LEASE, RENEW


class PbxCommand:
    """`manage.py pbx ARGS` as a child process on the test database, its output in a file."""

    def __init__(self, tmp_path, *args, env=None):
        self.log = tmp_path / f"pbx-{free_port()}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "pbx", *args],
                cwd=PROJECT_DIR,
                env={
                    **os.environ,
                    "DEBUG": "1",
                    "DATABASE_URL": database_url(),
                    "PBX_LEASE_SECONDS": str(LEASE),
                    "PBX_LEASE_RENEW_SECONDS": str(RENEW),
                    "PYTHONUNBUFFERED": "1",
                    **(env or {}),
                },
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self):
        return self.process.pid

    def owns(self, server) -> bool:
        owner = PbxServer.objects.get(pk=server.pk).lease_owner
        return owner.split(":")[1:2] == [str(self.pid)]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def logged_in(self, server):
        """Its own AMI session is up: the row may still say `connected` for an owner that died."""
        wait_for(
            lambda: f"AMI {server.name}: connected" in self.output(),
            timeout=START_TIMEOUT,
            what=f"pbx {self.pid} to log in to {server.name}",
        )

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextlib.contextmanager
def pbx_commands(tmp_path, *argss, env=None):
    commands = []
    try:
        for args in argss:
            commands.append(PbxCommand(tmp_path, *args, env=env))
        yield commands
    finally:
        for command in commands:
            command.stop()


def row(server) -> PbxServer:
    return PbxServer.objects.get(pk=server.pk)


def connected(server, timeout=START_TIMEOUT):
    wait_for(lambda: row(server).state == "connected", timeout=timeout, what=f"{server.name} to connect")


def renewals_pass(server, count=2):
    """Wait until the owner renewed its lease `count` more times: what another process would do, it did."""
    start = row(server).lease_expires_at
    wait_for(
        lambda: row(server).lease_expires_at >= start + dt.timedelta(seconds=count * RENEW),
        timeout=count * RENEW + 5,
        what="the lease renewals",
    )


def check(*args) -> tuple[int, str]:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_status:
        call_command("pbx", "--check", *args, stdout=out, stderr=out)
    return exit_status.value.code, out.getvalue()


def ended(uniqueid):
    return CallRecord.objects.filter(uniqueid=uniqueid, ended_at__isnull=False).first()


def test_two_processes_one_owner_and_each_call_folded_once(server, facade, tmp_path):
    with pbx_commands(tmp_path, [], []) as (first, second):
        connected(server)
        owner = wait_for(lambda: next((c for c in (first, second) if c.owns(server)), None))
        standby = second if owner is first else first
        calls = [f"t-own-{n}" for n in range(4)]
        for channel_id in calls:
            outcome = facade.originate(
                server=server, channel_id=channel_id, number="5551001", context="platform-hold", wait=True
            )
            assert outcome.outcome == "answered"
        wait_for(lambda: all(ended(c) for c in calls), what="every call to be recorded")
        renewals_pass(server)
        assert owner.owns(server) and standby.process.poll() is None
        assert f"AMI {server.name}: connected" in owner.output()
        assert f"AMI {server.name}: connected" not in standby.output()
    records = CallRecord.objects.filter(uniqueid__in=calls)
    assert records.count() == len(calls)
    assert {(r.disposition, r.billsec, r.duration, r.hangup_cause) for r in records} == {
        ("ANSWERED", 2, 3, 16)
    }


def test_a_standby_takes_over_from_an_owner_killed_outright(server, facade, tmp_path):
    with pbx_commands(tmp_path, [], []) as (first, second):
        connected(server)
        owner = wait_for(lambda: next((c for c in (first, second) if c.owns(server)), None))
        standby = second if owner is first else first
        # 5551005 answers and stays 60 s of PBX time (3 s here): live while the owner dies.
        facade.originate(server=server, channel_id="t-live", number="5551005", context="platform-hold")
        wait_for(lambda: CallRecord.objects.filter(uniqueid="t-live", state="answered").exists())
        owner.process.send_signal(signal.SIGKILL)
        owner.process.wait(5)
        wait_for(lambda: standby.owns(server), timeout=LEASE + RENEW + 3, what="the standby's takeover")
        standby.logged_in(server)
        connected(server)
        # The call that was live is settled: by its Hangup, or by the reconcile on connect.
        live = wait_for(lambda: ended("t-live"), timeout=15, what="the live call to be settled")
        assert live.disposition == "ANSWERED"
        outcome = facade.originate(
            server=server, channel_id="t-after", number="5551001", context="platform-hold", wait=True
        )
        assert outcome.outcome == "answered"
        after = wait_for(lambda: ended("t-after"), what="the call after the takeover")
    assert (after.disposition, after.billsec) == ("ANSWERED", 2)


def test_check_says_no_process_owns_a_server_whose_owner_died(server, tmp_path):
    with pbx_commands(tmp_path, []) as (owner,):
        connected(server)
        assert check()[0] == 0
        owner.process.send_signal(signal.SIGKILL)
        owner.process.wait(5)
        wait_for(lambda: row(server).lease_expires_at < timezone.now(), timeout=LEASE + 1)
        status, output = check()
        assert status == 1
        assert f"{server.name}: DOWN" in output
        assert "NO pbx process owns it (its lease lapsed" in output
        with pbx_commands(tmp_path, []) as (standby,):
            wait_for(lambda: standby.owns(server), timeout=START_TIMEOUT)
            standby.logged_in(server)
            connected(server)
            # On a loaded machine the new link may still be settling (a reconnect): the check is
            # read again until it says up, as a person would run it again.
            # The read that said up is the one asserted on: a second read could land in another
            # reconnect on a loaded machine.
            status, output = wait_for(
                lambda: (result := check())[0] == 0 and result,
                timeout=START_TIMEOUT,
                what="the check to say up",
            )
    assert status == 0, output
    assert f"{server.name}: up" in output
    assert f":{standby.pid}:" in output


def test_server_option_owns_only_the_named_server(sim, tmp_path):
    named = PbxServerFactory(ami_port=sim.port, agi_bind_port=sim.agi_port)
    other = PbxServerFactory(ami_port=sim.port)
    with pbx_commands(tmp_path, ["--server", named.name]) as (command,):
        connected(named)
        assert command.owns(named)
        renewals_pass(named)  # and the other server stays nobody's
        other_row = row(other)
    assert (other_row.lease_owner, other_row.state) == ("", "unknown")
    assert f"AMI {other.name}" not in command.output()


def test_server_option_with_an_unknown_name_fails_naming_it(server):
    with pytest.raises(CommandError, match="no PBX server named nosuch"):
        call_command("pbx", "--server", "nosuch")


def test_servers_added_changed_and_disabled_while_running(sim, facade):
    proxy = TcpProxy("127.0.0.1", sim.port).start()
    try:
        with pbx_process(None) as runner:
            server = PbxServerFactory(ami_port=sim.port, agi_bind_port=sim.agi_port)
            connected(server, timeout=15)  # picked up while running
            facade.originate(
                server=server, channel_id="t-reload", number="5551001", context="platform-hold", wait=True
            )
            wait_for(lambda: ended("t-reload"), what="a call on the added server")

            PbxServer.objects.filter(pk=server.pk).update(ami_port=proxy.port)
            wait_for(
                lambda: (
                    server.pk in runner.process.links
                    and runner.process.links[server.pk].server.ami_port == proxy.port
                ),
                timeout=15,
                what="the reconnect with the new port",
            )
            connected(server)
            proxy.cut()  # the session now goes through the proxy: cutting it drops the link
            wait_for(lambda: row(server).state == "down", what="the cut to be noticed")
            proxy.restore()
            connected(server)

            PbxServer.objects.filter(pk=server.pk).update(enabled=False)
            wait_for(lambda: not runner.process.links, timeout=15, what="the link to stop")
            stopped = row(server)
    finally:
        proxy.close()
    assert (stopped.state, stopped.last_error, stopped.lease_owner) == ("down", "disabled in the admin", "")


def test_the_database_refuses_ports_out_of_range(server):
    with pytest.raises(IntegrityError):
        PbxServer.objects.filter(pk=server.pk).update(ami_port=70000)
    with pytest.raises(IntegrityError):
        PbxServer.objects.filter(pk=server.pk).update(agi_bind_port=70001)


@pytest.mark.parametrize(
    ("broken", "error"),
    [
        ({"ami_host": "pbx .example..com"}, "cannot start: AMI host: 'pbx .example..com' is neither"),
        ({"agi_bind_host": "bind here please"}, "cannot start: FastAGI bind address: 'bind here please'"),
        ({"ami_host": "pbx\r\nAction: Originate", "agi_bind_host": "a..b"}, "cannot start: AMI host"),
        ({"ami_secret": "s\r\nAction: Originate"}, "cannot start: AMI secret: Control characters"),
        # Nothing listens there.
        ({"ami_port": 65535}, "cannot connect"),
    ],
)
def test_a_server_that_cannot_work_leaves_the_others_alone(sim, facade, broken, error):
    good = PbxServerFactory(ami_port=sim.port, agi_bind_port=sim.agi_port)
    bad = PbxServerFactory(ami_port=sim.port)
    PbxServer.objects.filter(pk=bad.pk).update(**broken)  # past validation, as a bad import would
    with pbx_process(None) as runner:
        connected(good)
        bad_row = wait_for(
            lambda: PbxServer.objects.filter(pk=bad.pk, state="down").exclude(last_error="").first(),
            timeout=15,
            what="the bad server's row to say what is wrong",
        )
        facade.originate(
            server=good, channel_id="t-good", number="5551001", context="platform-hold", wait=True
        )
        record = wait_for(lambda: ended("t-good"), what="the good server's call record")
        status, output = check()
        assert runner.process.links[good.pk].client.connected.is_set()
    assert record.disposition == "ANSWERED"
    assert status == 1
    assert f"{good.name}: up" in output
    assert f"{bad.name}: DOWN" in output
    assert error in bad_row.last_error
    assert bad_row.last_error in output
    assert "platform-secret" not in output


def test_state_reports_land_in_the_order_they_happened(server):
    """A connect that fails at once: `connecting` then `down`. Written by a pool of threads, the
    first report may be the slower one; the row must still end saying down, and why."""
    PbxServer.objects.filter(pk=server.pk).update(lease_owner="this-process")

    async def scenario():
        process = PbxProcess(apps=[])
        process.owner = "this-process"
        write = process.db

        async def first_write_slow(function, **fields):
            if fields.get("state") == "connecting":
                await asyncio.sleep(0.2)  # the database was busy for the first writer
            return await write(function, **fields)

        process.db = first_write_slow
        link = ServerLink(server, process, Lease(server.pk, "this-process", 0))
        link._on_state(None, "connecting", "")
        link._on_state(None, "down", "cannot connect: refused")
        await asyncio.gather(*link.background)
        link.fold_thread.shutdown()
        process.app_threads.shutdown()

    asyncio.run(scenario())
    assert (row(server).state, row(server).last_error) == ("down", "cannot connect: refused")
