import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://x@y/z"),
        ("REDIS_URL", "http://localhost:6379"),
        ("TIME_ZONE", "Mars/Olympus"),
        ("EMAIL_URL", "carrier-pigeon://coop"),
        ("CELERY_TASK_TIME_LIMIT", "soon"),
        ("PBX_LEASE_RENEW_SECONDS", "0"),
        ("PBX_LEASE_SECONDS", "2"),  # no longer than the renew period
        ("CALLCARDS_DIGEST_HOUR", "24"),
        ("SITE_URL", "cc.example.com"),
        ("SITE_URL", "https://cc.example.com/portal"),
    ],
)
def test_a_wrong_value_stops_start_up_naming_the_variable(name, value, tmp_path):
    environment = {**os.environ, "DEBUG": "1", "VAR_DIR": str(tmp_path), name: value}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=environment, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert f"Environment variable {name}=" in result.stderr


@pytest.mark.parametrize("name", ["SECRET_KEY", "CALLCARDS_PIN_KEY"])
def test_secret_keys_are_required_without_debug(tmp_path, name):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "CALLCARDS_PIN_KEY")}
    environment |= {"SECRET_KEY": "s" * 40, "CALLCARDS_PIN_KEY": "p" * 40}
    del environment[name]
    environment |= {"DEBUG": "0", "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=environment, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert f"{name} must be set when DEBUG is off" in result.stderr


def test_dev_secret_key_is_generated_once(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    key_file = tmp_path / "key"
    first = env.env_secret_key("SECRET_KEY", debug=True, dev_key_file=key_file)
    assert len(first) >= 50
    assert env.env_secret_key("SECRET_KEY", debug=True, dev_key_file=key_file) == first


def test_database_url_defaults_and_postgres(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    sqlite = env.env_database("DATABASE_URL", "sqlite:////tmp/x.sqlite3")
    assert sqlite["ENGINE"] == "django.db.backends.sqlite3"
    monkeypatch.setenv("DATABASE_URL", "postgres://cc:pw@db.internal:5433/callcenter")
    pg = env.env_database("DATABASE_URL", "")
    assert (pg["ENGINE"], pg["HOST"], pg["PORT"], pg["NAME"]) == (
        "django.db.backends.postgresql",
        "db.internal",
        5433,
        "callcenter",
    )


def test_broker_defaults_to_filesystem_transport(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    url, options = env.env_broker("REDIS_URL", tmp_path / "broker")
    assert url == "filesystem://"
    assert Path(options["data_folder_in"]).is_dir()
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert env.env_broker("REDIS_URL", tmp_path) == ("redis://127.0.0.1:6379/0", {})


def test_email_url_smtp(monkeypatch):
    monkeypatch.setenv("EMAIL_URL", "smtp://mailer:s%40cret@smtp.example:587?tls=1")
    config = env.env_email("EMAIL_URL")
    assert config["EMAIL_HOST"] == "smtp.example"
    assert config["EMAIL_PORT"] == 587
    assert config["EMAIL_HOST_PASSWORD"] == "s@cret"
    assert config["EMAIL_USE_TLS"] is True


def test_email_url_without_host_is_refused(monkeypatch):
    monkeypatch.setenv("EMAIL_URL", "smtp://")
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL"):
        env.env_email("EMAIL_URL")


def manage(*args, environment):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=environment, capture_output=True, text=True
    )


def test_a_missing_secret_key_is_one_line_not_a_traceback(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    result = manage("call", "5551001", environment=environment | {"VAR_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "manage.py: Environment variable SECRET_KEY must be set when DEBUG is off"
        " (for the demo, start `make run` first or set DEBUG=1)"
    ]


PRINT_DEBUG = [
    "shell",
    "--no-imports",
    "-c",
    "from django.conf import settings; print(settings.DEBUG, settings.DEMO_PORT_BASE)",
]


def test_make_runs_file_gives_debug_to_commands_but_never_to_a_deployment(tmp_path):
    (tmp_path / env.MAKE_RUN_ENV_FILE).write_text("# make run\nDEBUG=1\nDEMO_PORT_BASE=9000\nSECRET_KEY=no\n")
    bare = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DEMO_PORT_BASE")}
    bare["VAR_DIR"] = str(tmp_path)
    assert manage(*PRINT_DEBUG, environment=bare).stdout == "True 9000\n"
    # The environment wins over the file.
    assert manage(*PRINT_DEBUG, environment=bare | {"DEMO_PORT_BASE": "9100"}).stdout == "True 9100\n"
    # A deployment sets SECRET_KEY: the file is not read at all.
    deployment = bare | {"SECRET_KEY": "k" * 40, "CALLCARDS_PIN_KEY": "p" * 40}
    assert manage(*PRINT_DEBUG, environment=deployment).stdout == "False 8000\n"


def test_the_web_and_worker_processes_never_read_make_runs_file(tmp_path):
    """gunicorn and celery load the settings without manage.py: a file a `make run` left in a
    deployed checkout turns nothing on there, and a missing SECRET_KEY still stops them."""
    (tmp_path / env.MAKE_RUN_ENV_FILE).write_text("DEBUG=1\nDEMO_PORT_BASE=9000\n")
    bare = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DEMO_PORT_BASE")}
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=BASE_DIR,
        env=bare | {"VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
