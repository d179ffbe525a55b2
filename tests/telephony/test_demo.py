"""The demo of `make run`: one DEMO_PORT_BASE moves every port, and demo_data keeps an operator's edits."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from telephony.demo import demo_globals_file
from telephony.models import PbxServer
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_settings(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.DEMO_PORT_BASE = 18000
    return settings


def procfile_command(name, **environ):
    """The Procfile.demo line `name` as its shell expands it (echoed instead of run)."""
    for line in (PROJECT_DIR / "Procfile.demo").read_text().splitlines():
        if line.startswith(f"{name}:"):
            command = line.partition(":")[2].strip().removeprefix("exec ")
            break
    else:
        raise AssertionError(f"Procfile.demo has no {name} process")
    env = {"PATH": os.environ["PATH"], **environ}
    return subprocess.run(["sh", "-c", f"echo {command}"], env=env, capture_output=True, text=True).stdout


def test_demo_data_adds_the_simulator_as_pbx_server(demo_settings, capsys):
    call_command("demo_data")
    call_command("demo_data")
    server = PbxServer.objects.get()
    assert (
        server.name,
        server.ami_port,
        server.agi_bind_port,
        server.routes.get().dial_string("5551001"),
    ) == (
        "demo",
        18038,
        18073,
        "Local/5551001@phones",
    )
    assert "PBX server:               demo (the simulator on 127.0.0.1:18038)" in capsys.readouterr().out
    # The demo dialplan sends FastAGI calls where the pbx process serves them.
    assert "PLATFORM_AGI=agi://127.0.0.1:18073\n" in demo_globals_file().read_text()


def test_procfile_demo_follows_the_same_port_base(demo_settings):
    environ = {"DEMO_PORT_BASE": "18000", "VAR_DIR": str(demo_settings.VAR_DIR)}
    assert "--bind 127.0.0.1:18000 " in procfile_command("web", **environ)
    pbxsim = procfile_command("pbxsim", **environ)
    assert "--listen 127.0.0.1:18038 " in pbxsim
    assert f"--dialplan {demo_globals_file()} " in pbxsim


def test_procfile_demo_defaults_to_port_base_8000():
    assert "--bind 127.0.0.1:8000 " in procfile_command("web")
    assert "--listen 127.0.0.1:8038 " in procfile_command("pbxsim")


@pytest.mark.parametrize(
    "old_ports", [(8038, 8073), (5038, 4573)], ids=["another base", "before the setting"]
)
def test_demo_data_moves_ports_that_follow_the_demo(demo_settings, old_ports):
    PbxServerFactory(name="demo", ami_port=old_ports[0], agi_bind_port=old_ports[1])
    call_command("demo_data")
    server = PbxServer.objects.get()
    assert (server.ami_port, server.agi_bind_port) == (18038, 18073)


def test_demo_data_keeps_what_an_operator_edited(demo_settings, capsys):
    PbxServerFactory(name="demo", ami_port=6000, agi_bind_port=4573, ami_secret="changed", enabled=False)
    call_command("demo_data")
    server = PbxServer.objects.get()
    assert (server.ami_port, server.agi_bind_port, server.ami_secret, server.enabled) == (
        6000,
        4573,
        "changed",
        False,
    )
    assert "the simulator listens on 18038, FastAGI is expected on 18073" in capsys.readouterr().out


def test_make_run_installs_no_browser():
    def dry_run(target):
        return subprocess.run(
            ["make", "-n", target], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
        ).stdout

    assert "scripts/system-deps run" in dry_run("run")
    assert "scripts/system-deps test" in dry_run("test")


@pytest.mark.parametrize("value", ["80", "65500", "eight"])
def test_a_port_base_without_room_for_the_demo_stops_start_up(value, tmp_path):
    environment = {**os.environ, "DEBUG": "1", "VAR_DIR": str(tmp_path), "DEMO_PORT_BASE": value}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"Environment variable DEMO_PORT_BASE={value!r}" in result.stderr
