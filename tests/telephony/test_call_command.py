"""`manage.py call`: the README's demo call, on pbxsim loaded as `make run` loads it."""

import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Company, User
from pbxsim.harness import free_port, running_pbxsim
from telephony.demo import demo_globals_file
from telephony.models import CallRecord, PbxServer
from telephony.testing import database_url, pbx_process, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEMO_DIR = PROJECT_DIR / "telephony" / "asterisk"
README = PROJECT_DIR / "README.md"


@pytest.fixture
def demo(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("demo_data", stdout=io.StringIO())
    return PbxServer.objects.get(name="demo")


@pytest.fixture
def demo_pbx(demo):
    """The simulator with Procfile.demo's files, the demo server pointed at it, and the pbx process
    (which folds the calls' events, and so tells the command each call's outcome), as under make run."""
    dialplans = [
        DEMO_DIR / "extensions_platform.conf",
        DEMO_DIR / "demo" / "phones.conf",
        demo_globals_file(),
    ]
    with running_pbxsim(
        dialplans=dialplans, manager_users=DEMO_DIR / "demo" / "manager.conf", time_scale=20
    ) as sim:
        PbxServer.objects.filter(pk=demo.pk).update(ami_port=sim.port, agi_bind_port=free_port())
        with pbx_process([PbxServer.objects.get(pk=demo.pk)]):
            # Logged in before the call: the call's events reach only a session already there (a
            # loaded CI placed the call first, and its outcome never came).
            wait_for(
                lambda: PbxServer.objects.get(pk=demo.pk).state == "connected",
                timeout=30,
                what="the pbx process's AMI login",
            )
            yield sim


def call(*args):
    out = io.StringIO()
    call_command("call", *args, stdout=out)
    return out.getvalue()


def test_a_demo_call_is_placed_and_listed_in_the_portal(demo_pbx, client):
    assert call("5551001").startswith("5551001: answered (call call-")
    assert call("5551002", "--from", "5550123").startswith("5551002: busy")
    records = CallRecord.objects.filter(company__slug="demo", app="call").order_by("id")
    assert [(r.callee, r.caller) for r in records] == [("5551001", "5550000"), ("5551002", "5550123")]
    client.force_login(User.objects.get(username="demo"))
    page = client.get("/portal/demo/telephony/calls/")
    assert page.status_code == 200
    assert "5551001" in page.text and "5551002" in page.text


def test_an_unknown_server_is_named(demo):
    with pytest.raises(CommandError, match=r"no PBX server named 'nope' \(servers: demo\)"):
        call("5551001", "--server", "nope")


def test_an_unknown_company_is_named(demo):
    with pytest.raises(CommandError, match="no company with slug 'nope'"):
        call("5551001", "--company", "nope")


def test_not_a_number_is_refused_before_dialing(demo):
    with pytest.raises(CommandError, match="'55-51' is not a number to dial"):
        call("55-51")
    assert not CallRecord.objects.exists()


def test_an_unreachable_pbx_is_one_line_and_a_failed_exit(demo):
    PbxServer.objects.filter(pk=demo.pk).update(ami_port=free_port())
    result = subprocess.run(
        [sys.executable, "manage.py", "call", "5551001"],
        cwd=PROJECT_DIR,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": database_url()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"CommandError: cannot reach PBX server demo at 127.0.0.1:{PbxServer.objects.get().ami_port}: "
        "AMI demo is not reachable"
    ]
    # The attempt is in the call list too, failed.
    assert CallRecord.objects.get(company=Company.objects.get(slug="demo")).disposition == "FAILED"


def without(*names):
    return {name: value for name, value in os.environ.items() if name not in names}


@pytest.mark.long
def test_the_readme_commands_work_as_written_beside_make_run(demo_pbx, tmp_path):
    """A new user types `.venv/bin/python manage.py call 5551001` in a second terminal: no DEBUG,
    no SECRET_KEY in that shell, only what `make run` left behind."""
    subprocess.run(
        ["make", "--no-print-directory", "run-env", f"VAR_DIR={tmp_path}"],
        cwd=PROJECT_DIR,
        env=without("DEBUG", "DEMO_PORT_BASE"),
        check=True,
    )
    environment = without("DEBUG", "SECRET_KEY", "DEMO_PORT_BASE") | {
        "VAR_DIR": str(tmp_path),  # where this test's make run wrote, as var/ for the user
        "DATABASE_URL": database_url(),
    }

    def readme(*args):
        return subprocess.run(
            [".venv/bin/python", "manage.py", *args],
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = readme("call", "5551001")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("5551001: answered (call call-")
    # The callcenter block, line by line as the README has it, on the demo's queue.
    line = re.compile(r"^\.venv/bin/python manage\.py (callcenter .+?)(?:#.*)?$", re.MULTILINE)
    commands = line.findall(README.read_text())
    assert len(commands) == 5
    for command in commands:
        result = readme(*shlex.split(command))
        assert (command, result.returncode, result.stderr) == (command, 0, "")
    assert json.loads(result.stdout) == []  # member list --json: nobody waiting


PHONE_EXTENSION = re.compile(r"^exten => (\S+?),1,", re.MULTILINE)


def test_the_readme_lists_every_demo_phone():
    # The people of the [phones] context (a Gosub the demo dials with, in its own context, is none).
    section = (DEMO_DIR / "demo" / "phones.conf").read_text().split("\n[phones]\n", 1)[1].split("\n[", 1)[0]
    phones = PHONE_EXTENSION.findall(section)
    assert "5551010" in phones and "_+336123450XX" in phones
    readme_rows = re.findall(r"^\| (.+?) \|", README.read_text(), re.MULTILINE)
    # A pattern reads as people write the numbers it takes.
    spoken = {"_+336123450XX": "+33 6 12 34 50 NN", "_+336123452XX": "+33 6 12 34 52 NN"}
    assert [spoken.get(phone, phone) for phone in phones if spoken.get(phone, phone) not in readme_rows] == []
