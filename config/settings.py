"""Settings, all read from the environment through config.env (see the README's table)."""

from pathlib import Path

from celery.schedules import crontab

from config import env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env.env_path("VAR_DIR", BASE_DIR / "var")

DEBUG = env.env_bool("DEBUG", False)
SECRET_KEY = env.env_secret_key("SECRET_KEY", debug=DEBUG, dev_key_file=VAR_DIR / "dev-secret-key")
# Former keys, comma-separated: sessions and API tokens made under them still work after a rotation.
SECRET_KEY_FALLBACKS = env.env_list("SECRET_KEY_FALLBACKS", [])
# Encrypts call cards' PINs and keys their lookup digest; kept out of the database, so a dump alone
# reveals no PIN. Losing it makes every card's PIN unusable: back it up with the database's backups.
CALLCARDS_PIN_KEY = env.env_secret_key(
    "CALLCARDS_PIN_KEY", debug=DEBUG, dev_key_file=VAR_DIR / "dev-callcards-pin-key"
)
ALLOWED_HOSTS = env.env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.lazy_admin.AdminConfig",  # django.contrib.admin, its ModelAdmins imported by the URLs
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "import_export",
    "accounts",
    "telephony",
    "callcards",
    "click2call",
    "queues",
    "tickets",
    "config.apps.PlatformConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.exceptions.ApiErrorMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.CompanyTimezoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.company",
            ],
        },
    },
]

DATABASES = {"default": env.env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:entry"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.env_time_zone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.env_path("STATIC_ROOT", VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.env_path("MEDIA_ROOT", VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Served at the site's root: browsers ask every page's /favicon.ico, the admin's and the API docs' too.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

_email = env.env_email("EMAIL_URL")
EMAIL_BACKEND = _email.pop("EMAIL_BACKEND")
globals().update(_email)
DEFAULT_FROM_EMAIL = env.env_str("DEFAULT_FROM_EMAIL", "callcenter@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

if not DEBUG:
    SESSION_COOKIE_SECURE = env.env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CACHES = {"default": env.env_cache("REDIS_URL", VAR_DIR / "cache")}
# Failed logins (portal, admin, API Basic auth) per account and per client address within
# LOGIN_LOCKOUT_SECONDS of the last one; reaching a limit locks it for LOGIN_LOCKOUT_SECONDS.
LOGIN_FAILURES_PER_ACCOUNT = env.env_int("LOGIN_FAILURES_PER_ACCOUNT", 10, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env.env_int("LOGIN_FAILURES_PER_ADDRESS", 30, minimum=1)
LOGIN_LOCKOUT_SECONDS = env.env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
# Behind N reverse proxies the client is the Nth address from the right of X-Forwarded-For.
TRUSTED_PROXY_HOPS = env.env_int("TRUSTED_PROXY_HOPS", 0, minimum=0)
# The click2call banner's requests per campaign, per client address and per called number.
C2C_THROTTLE_PER_ADDRESS = env.env_rate("C2C_THROTTLE_PER_ADDRESS", "10/hour")
C2C_THROTTLE_PER_NUMBER = env.env_rate("C2C_THROTTLE_PER_NUMBER", "3/hour")
# How long a web process keeps a banner key's campaign: a rotated key or a deactivation made in
# another process takes effect within it. 0 looks the key up on every request.
C2C_CAMPAIGN_CACHE_SECONDS = env.env_int("C2C_CAMPAIGN_CACHE_SECONDS", 5, minimum=0)
# A click2call try its task could not send (the PBX was down) is given up this long after its
# claim, rather than ring the visitor whenever the PBX comes back.
C2C_CLAIM_GIVE_UP_SECONDS = env.env_int("C2C_CLAIM_GIVE_UP_SECONDS", 300, minimum=60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Basic first: a request without credentials gets 401 with WWW-Authenticate, not 403.
        "accounts.api.authentication.ThrottledBasicAuthentication",
        "accounts.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsCompanyMember"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.ApiPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_PARSER_CLASSES": ["config.parsers.ApiJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "config.openapi.ApiAutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Call-center platform API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files: /api/docs/ fetches nothing from elsewhere.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "CallRequestStatusEnum": "click2call.models.CallRequest.Status",
        "CallAttemptStatusEnum": "click2call.models.CallAttempt.Status",
        "CampaignFirstPartyEnum": "click2call.models.Campaign.FirstParty",
        "CallRecordStateEnum": "telephony.models.CallRecord.State",
        "AgentStatusEnum": "queues.models.Agent.Status",
        "AgentStateEnum": "queues.models.Agent.State",
        "TierStateEnum": "queues.models.Tier.State",
        "MemberStateEnum": "queues.models.Member.State",
        "CardStatusEnum": "callcards.lifecycle.Status",
        "TicketCallStateEnum": "tickets.models.TicketCall.State",
        "TicketMessageStateEnum": "tickets.models.TicketMessage.State",
    },
}

# Celery: the broker is Redis in production, kombu's filesystem transport otherwise.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = env.env_broker("REDIS_URL", VAR_DIR / "broker")
# The filesystem broker, with a worker that stops at once on SIGTERM (see config.celery).
CELERY_BROKER_TRANSPORT = None if env.env_str("REDIS_URL") else "config.celery:FilesystemTransport"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = env.env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env.env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The beat schedules' defaults, the one place they are written down: the data migration
# config/migrations/0001 and `manage.py schedules` create the missing ones in django-celery-beat's
# tables, where beat reads them and staff edit them in the admin (config.schedules).
BEAT_SCHEDULE_DEFAULTS = {
    "requeue lost webhook deliveries": {"task": "telephony.requeue_webhooks", "schedule": 300.0},
    "dial due click2call tries": {"task": "click2call.dial_due", "schedule": 30.0},
    # Call cards running low: each holder told once; the companies' digests checked every hour, each
    # company's sent once a day from CALLCARDS_DIGEST_HOUR in its own time zone (callcards.services.alerts).
    "e-mail card holders running low": {"task": "callcards.low_balance_alerts", "schedule": 300.0},
    "e-mail the daily digests of cards running low": {
        "task": "callcards.low_balance_digests",
        "schedule": crontab(minute=3),
    },
    # Companies told of click2call requests waiting for their call back (click2call.services.reminders).
    "e-mail click2call reminders": {"task": "click2call.send_reminders", "schedule": 60.0},
    # Click2call invoices: last month's, each company's own month (click2call.services.invoices). Every
    # hour of the 1st: a month ends later in the west (UTC-12) than here, and a company invoiced already is
    # skipped. Invoice e-mails a mail server that was down left pending go out at the next run after a pause.
    "issue the click2call invoices of the month before": {
        "task": "click2call.issue_monthly_invoices",
        "schedule": crontab(minute=30, day_of_month=1),
    },
    "e-mail click2call invoices left pending": {"task": "click2call.invoice_mails", "schedule": 300.0},
    # Ticket SMS whose task was lost (broker down at the call's end, a worker gone): queued again.
    "send ticket SMS left pending": {"task": "tickets.send_due_sms", "schedule": 60.0},
    # Ticket lines' recordings older than the line's retention_days deleted (tickets.services.retention):
    # hourly, so a recording outlives its retention by an hour at most.
    "delete ticket recordings past their retention": {
        "task": "tickets.expire_recordings",
        "schedule": crontab(minute=41),
    },
}
# Empty on purpose: beat's DatabaseScheduler writes this dict over the database at each start
# (update_or_create), which would undo an admin's edits. Defaults go in BEAT_SCHEDULE_DEFAULTS.
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# `make run`'s ports, all moved by one variable so two checkouts can run side by side:
# web on the base, the PBX simulator's AMI on base+38 and FastAGI on base+73 (see telephony.demo).
DEMO_PORT_BASE = env.env_int("DEMO_PORT_BASE", 8000, minimum=1024)
if DEMO_PORT_BASE > 65535 - 73:
    raise env.EnvError("DEMO_PORT_BASE", str(DEMO_PORT_BASE), "must be at most 65462 (FastAGI is on base+73)")

# The platform's address as its users reach it: the links in the mail it sends (a reminder's link to
# the call in the portal) start with it.
SITE_URL = env.env_str("SITE_URL", f"http://localhost:{DEMO_PORT_BASE}").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")) or "/" in SITE_URL.split("://", 1)[1]:
    raise env.EnvError("SITE_URL", SITE_URL, "must be http(s)://host[:port], without a path")

# Caller ID comes from anybody: formulas are escaped by config.exports. A control
# character XLSX cannot hold becomes U+FFFD rather than failing the whole export.
IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT = True

# Telephony: the longest call a pushed event may make, and whether webhooks may reach private addresses.
PUSH_CALL_MAX_SECONDS = env.env_int("PUSH_CALL_MAX_SECONDS", 86400, minimum=60)
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Call cards: dial-in failures (a wrong card id or PIN) that lock the caller's number, or the card,
# out for CALLCARDS_LOCKOUT_SECONDS, counted within that time; PIN guessing is the attack.
CALLCARDS_LOCKOUT_FAILURES = env.env_int("CALLCARDS_LOCKOUT_FAILURES", 5, minimum=1)
CALLCARDS_LOCKOUT_SECONDS = env.env_int("CALLCARDS_LOCKOUT_SECONDS", 900, minimum=1)
# The hour (0-23, the company's time zone) from which a company's daily digest of cards running low goes out.
CALLCARDS_DIGEST_HOUR = env.env_int("CALLCARDS_DIGEST_HOUR", 8, minimum=0)
if CALLCARDS_DIGEST_HOUR > 23:
    raise env.EnvError("CALLCARDS_DIGEST_HOUR", str(CALLCARDS_DIGEST_HOUR), "must be an hour from 0 to 23")
# Ticket lines: where the calls' recordings go, absolute. Asterisk's MixMonitor writes them, so it
# must be the same path on the Asterisk host (shared storage when the PBX is another machine).
TICKETS_RECORDING_DIR = env.env_path("TICKETS_RECORDING_DIR", VAR_DIR / "recordings")
if not TICKETS_RECORDING_DIR.is_absolute() or any(c in str(TICKETS_RECORDING_DIR) for c in ",;|\"'"):
    raise env.EnvError(
        "TICKETS_RECORDING_DIR",
        str(TICKETS_RECORDING_DIR),
        "must be an absolute path without , ; | or quotes (the dialplan's MixMonitor reads it)",
    )
# The pbx process renews its lease on each PBX server this often; a standby takes a server over
# once its owner's lease lapses (the owner died without a word).
PBX_LEASE_RENEW_SECONDS = env.env_int("PBX_LEASE_RENEW_SECONDS", 2, minimum=1)
PBX_LEASE_SECONDS = env.env_int("PBX_LEASE_SECONDS", 6, minimum=2)
if PBX_LEASE_SECONDS <= PBX_LEASE_RENEW_SECONDS:
    raise env.EnvError(
        "PBX_LEASE_SECONDS", str(PBX_LEASE_SECONDS), "must be longer than PBX_LEASE_RENEW_SECONDS"
    )
# The longest pause between two attempts to reach a PBX that dropped or refused the AMI session
# (0.5 s, doubled at each failure up to this): a PBX back from an outage is found this soon.
PBX_RECONNECT_MAX_SECONDS = env.env_int("PBX_RECONNECT_MAX_SECONDS", 3, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.env_str("LOG_LEVEL", "INFO")},
    # WeasyPrint logs each page it lays out at INFO: a line a page of every PDF.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "weasyprint": {"level": "WARNING"}},
}
