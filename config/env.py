"""Reading settings from the environment.

Every variable the platform reads is parsed here, so a wrong value stops
start-up with a message naming the variable instead of failing later.
"""

import os
import secrets
import zoneinfo
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


class EnvError(ImproperlyConfigured):
    def __init__(self, name, value, problem):
        super().__init__(f"Environment variable {name}={value!r}: {problem}")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise EnvError(name, raw, "expected one of 1/0, true/false, yes/no, on/off")


def env_int(name, default, *, minimum=None):
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EnvError(name, raw, "expected a whole number") from None
    if minimum is not None and value < minimum:
        raise EnvError(name, raw, f"must be at least {minimum}")
    return value


_RATE_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def env_rate(name, default):
    """A throttle rate `N/second|minute|hour|day`, as (N, seconds)."""
    raw = os.environ.get(name, default)
    count, _, period = raw.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or period not in _RATE_PERIODS:
        raise EnvError(name, raw, "expected a rate such as 10/hour (per second, minute, hour or day)")
    return int(count), _RATE_PERIODS[period]


def env_list(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_time_zone(name, default):
    raw = os.environ.get(name, default)
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise EnvError(name, raw, "not an IANA time zone such as Europe/Paris") from None
    return raw


def env_path(name, default):
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


def env_database(name, default):
    raw = os.environ.get(name) or default
    if not raw.startswith(("sqlite:", "postgres:", "postgresql:", "pgsql:")):
        raise EnvError(name, raw, "expected sqlite:///PATH or postgres://USER:PASSWORD@HOST:PORT/NAME")
    try:
        config = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise EnvError(name, raw, str(exc)) from None
    if not config.get("NAME"):
        raise EnvError(name, raw, "no database name")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # A file, not SQLite's in-memory default: the pbx process's threads share the test
        # database, and an in-memory shared cache locks whole tables instead of waiting.
        name = Path(config["NAME"])
        config["TEST"] = {"NAME": str(name.with_name(f"test-{name.name}"))}
        # Several processes (web, worker, beat, pbx) share one file under make run.
        # WAL lets readers and the one writer work at once; NORMAL syncs at checkpoints, not every commit.
        # Connections persist (CONN_MAX_AGE, as for PostgreSQL): a web process closing its connection
        # after each request was often the last one open, and the last close checkpoints the WAL.
        config["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return config


def env_broker(name, default_dir):
    """REDIS_URL, or kombu's filesystem transport under default_dir when unset."""
    raw = os.environ.get(name)
    if not raw:
        for sub in ("in", "processed", "control"):
            (default_dir / sub).mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(default_dir / "in"),
            "data_folder_out": str(default_dir / "in"),
            "processed_folder": str(default_dir / "processed"),
            "store_processed": False,
            "control_folder": str(default_dir / "control"),
            # kombu's default is a look a second, so a queued task waited 0.5 s on average; the
            # worker wakes every 0.1 s anyway (config.celery), a look then costs one listdir.
            "polling_interval": 0.1,
        }
        return "filesystem://", options
    return _redis_url(name, raw), {}


def env_cache(name, default_dir):
    """REDIS_URL, its keys prefixed apart from Celery's, or files under default_dir when unset.

    Either is shared by every web process, so what one counts (failed logins) the others see.
    """
    raw = os.environ.get(name)
    if not raw:
        return {
            "BACKEND": "config.cache.FileCache",
            "LOCATION": str(default_dir),
            # About 40 MB of files at most; Django's 300 would drop live throttle counts early.
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _redis_url(name, raw),
        "KEY_PREFIX": "cache",
    }


def _redis_url(name, raw):
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise EnvError(name, raw, "expected redis://HOST:PORT/DB")
    return raw


def env_email(name, default="console://"):
    """EMAIL_URL: smtp://user:password@host:port[?tls=1|ssl=1], console://, locmem://."""
    raw = os.environ.get(name) or default
    parts = urlsplit(raw)
    backends = {
        "console": "django.core.mail.backends.console.EmailBackend",
        "locmem": "django.core.mail.backends.locmem.EmailBackend",
        "smtp": "django.core.mail.backends.smtp.EmailBackend",
        "smtps": "django.core.mail.backends.smtp.EmailBackend",
    }
    if parts.scheme not in backends:
        raise EnvError(name, raw, "expected smtp://, smtps://, console:// or locmem://")
    config = {"EMAIL_BACKEND": backends[parts.scheme]}
    if parts.scheme.startswith("smtp"):
        if not parts.hostname:
            raise EnvError(name, raw, "no SMTP host")
        query = parse_qs(parts.query)
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError:
            raise EnvError(name, raw, "the port is not a number") from None
        config |= {
            "EMAIL_HOST": parts.hostname,
            "EMAIL_PORT": port,
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_TLS": query.get("tls", ["0"])[0] in _TRUE,
            "EMAIL_USE_SSL": parts.scheme == "smtps" or query.get("ssl", ["0"])[0] in _TRUE,
        }
    return config


# What `make run` writes into VAR_DIR/make-run.env: its processes get these from make, a command
# typed in another terminal (the README's `manage.py call 5551001`) gets them from the file.
MAKE_RUN_ENV_FILE = "make-run.env"
MAKE_RUN_ENV_NAMES = ("DEBUG", "DEMO_PORT_BASE")


def load_make_run_env(path):
    """Take DEBUG and DEMO_PORT_BASE from the file `make run` wrote, where the environment sets neither.

    Only manage.py reads it (never the web, worker or beat processes), and not at all with SECRET_KEY
    set (which DEBUG off requires), so a `make run` tried once in a production checkout cannot turn
    a deployment's processes or its commands into debug ones.
    """
    if os.environ.get("SECRET_KEY") or not path.is_file():
        return
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in MAKE_RUN_ENV_NAMES:
            os.environ.setdefault(name, value.strip())


def env_secret_key(name, *, debug, dev_key_file):
    raw = os.environ.get(name)
    if raw:
        if len(raw) < 32:
            raise EnvError(name, "***", "must be at least 32 characters")
        return raw
    if not debug:
        raise ImproperlyConfigured(
            f"Environment variable {name} must be set when DEBUG is off"
            " (for the demo, start `make run` first or set DEBUG=1)"
        )
    # A development key, generated once and kept so logins survive restarts.
    if not dev_key_file.exists():
        dev_key_file.parent.mkdir(parents=True, exist_ok=True)
        dev_key_file.write_text(secrets.token_urlsafe(50))
    return dev_key_file.read_text().strip()
