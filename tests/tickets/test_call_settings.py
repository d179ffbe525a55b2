"""TICKETS_RECORDING_DIR: a path the dialplan's MixMonitor can carry, or no start at all."""

import os
import subprocess
import sys

import pytest
from django.conf import settings


@pytest.mark.parametrize("value", ["/srv/rec,ordings", "/srv/rec;ordings", '/srv/"recordings"'])
def test_a_recording_dir_the_dialplan_would_misread_stops_start_up(value, tmp_path):
    environment = {**os.environ, "DEBUG": "1", "VAR_DIR": str(tmp_path), "TICKETS_RECORDING_DIR": value}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "Environment variable TICKETS_RECORDING_DIR=" in result.stderr


def test_the_recording_dir_is_under_var_dir_by_default(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "TICKETS_RECORDING_DIR"}
    environment |= {"DEBUG": "1", "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(settings.TICKETS_RECORDING_DIR)",
        ],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "recordings"), result.stderr
