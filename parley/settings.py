"""Parley settings: one module, every deployable value from the environment (django-environ).

The embedded default (no variable set) is SQLite under ``var/``, the in-memory channel layer, Celery tasks run
in-process and the media worker inside the web process. Production sets ``DATABASE_URL`` and ``REDIS_URL``.
Every variable is documented in ``.env.example``.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

PARLEY_DATA_DIR = Path(env.str("PARLEY_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
PARLEY_DATA_DIR.mkdir(parents=True, exist_ok=True)


def _embedded_secret_key() -> str:
    """A per-installation key kept in the data directory, so the embedded default needs no configuration."""
    path = PARLEY_DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _embedded_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PARLEY_PUBLIC_URL = env.str("PARLEY_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
# Browser origins allowed on the token-authenticated WebSockets (/ws/video/, /ws/events/): parley/origins.py.
PARLEY_WS_ALLOWED_ORIGINS = env.list("PARLEY_WS_ALLOWED_ORIGINS", default=["*"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "channels",
    "django_htmx",
    "rooms",
    "media",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "parley.urls"
ASGI_APPLICATION = "parley.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{PARLEY_DATA_DIR / 'parley.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout keep the web process and in-process workers from tripping over each other's writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # The test database is a file with the same options, not Django's shared-cache in-memory default: shared cache
    # has table locks that fail at once ("database table is locked") instead of waiting for the busy timeout, so
    # threads writing together (REST views, the in-process media worker) would meet a database `make run` never uses.
    # It lives in /dev/shm where there is one (a tmpfs); the test run creates and deletes it.
    _test_db_dir = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else Path(tempfile.gettempdir())
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("PARLEY_TEST_DATABASE_PATH", default=str(_test_db_dir / f"parley-test-{os.getpid()}.sqlite3"))
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # channels-redis blocks 5 s per BZPOPMIN; redis-py's default socket timeout is also 5 s, which turned every
    # idle receive into redis.exceptions.TimeoutError. The socket timeout must stay above the blocking pop.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}],
                "prefix": env.str("PARLEY_CHANNEL_PREFIX", default="parley"),
                # Every socket of a web process shares one Redis list (and each channel a local buffer) of this
                # many messages; beyond it channels_redis drops messages. 100 (its default) overflowed in a
                # 1,000-member join burst across two processes (docs/PERFORMANCE.md, Signalling).
                "capacity": env.int("PARLEY_CHANNEL_CAPACITY", default=1000),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis broker in production; without REDIS_URL tasks run in-process (eagerly) and exceptions propagate.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not (REDIS_URL or env.str("CELERY_BROKER_URL", default="")))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "parley"
CELERY_BEAT_SCHEDULE = {
    "webhooks-retry-due": {"task": "rooms.tasks.webhook_deliveries_retry_due", "schedule": 30.0},
    "members-expire-disconnected": {"task": "rooms.tasks.members_expire_disconnected", "schedule": 10.0},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/dashboard/login/"
LOGIN_REDIRECT_URL = "/dashboard/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = PARLEY_DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise serves from finders too; the folder must exist
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(PARLEY_DATA_DIR / "storage")},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Finished recordings and posters (default storage): "local" under $PARLEY_DATA_DIR/storage, or "s3" (any
# S3-compatible service, django-storages). S3 credentials come from boto3's own chain (AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY, a profile, an instance role); downloads still go through Parley's signed `uri`.
PARLEY_STORAGE = env.str("PARLEY_STORAGE", default="local")
if PARLEY_STORAGE not in ("local", "s3") or (PARLEY_STORAGE == "s3" and not env.str("AWS_STORAGE_BUCKET_NAME", "")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("PARLEY_STORAGE must be 'local' or 's3' (with AWS_STORAGE_BUCKET_NAME).")
if PARLEY_STORAGE == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "location": env.str("PARLEY_STORAGE_PREFIX", default=""),
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            "default_acl": None,
            "file_overwrite": True,
        },
    }
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Bodies beyond this are refused before parsing (REST: 413 with the error shape).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("PARLEY_MAX_BODY_BYTES", default=256 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rooms.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rooms.api.authentication.IsProjectAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rooms.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "room_tokens": env.str("PARLEY_THROTTLE_ROOM_TOKENS", default="600/min"),
        "writes": env.str("PARLEY_THROTTLE_WRITES", default="1200/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Parley Video API",
    "DESCRIPTION": "Rooms, room tokens, sessions, recordings, streams, layouts and webhooks of a Parley server.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/video",
}

# Media (DESIGN §6). ICE servers are handed to browsers and to the media worker alike; no public STUN by default.
PARLEY_ICE_SERVERS = json.loads(env.str("PARLEY_ICE_SERVERS", default="[]"))
PARLEY_ICE_HOST_ADDRESSES = env.list("PARLEY_ICE_HOST_ADDRESSES", default=["127.0.0.1"])
PARLEY_ICE_ANNOUNCED_ADDRESS = env.str("PARLEY_ICE_ANNOUNCED_ADDRESS", default="")
# "embedded": the media worker runs inside the web process; "external": `manage.py mediaworker` processes.
PARLEY_MEDIA_WORKER = env.str("PARLEY_MEDIA_WORKER", default="embedded")
# Members mixed at most when more talk at once (the loudest; 0: every member above its noise gate). docs/layouts.md
PARLEY_MIX_MAX_SOURCES = env.int("PARLEY_MIX_MAX_SOURCES", default=4)
if PARLEY_MIX_MAX_SOURCES < 0:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("PARLEY_MIX_MAX_SOURCES must be 0 (no limit) or a positive number of members.")
PARLEY_MEDIA_TTL_DEFAULT = env.int("PARLEY_MEDIA_TTL_DEFAULT", default=900)
PARLEY_TOKEN_TTL_DEFAULT = env.int("PARLEY_TOKEN_TTL_DEFAULT", default=24 * 3600)
PARLEY_RECONNECT_GRACE_SECONDS = env.int("PARLEY_RECONNECT_GRACE_SECONDS", default=30)

PARLEY_WEBHOOK_TIMEOUT_SECONDS = env.float("PARLEY_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
PARLEY_WEBHOOK_MAX_AGE_SECONDS = env.int("PARLEY_WEBHOOK_MAX_AGE_SECONDS", default=24 * 3600)
PARLEY_WEBHOOK_BACKOFF_BASE_SECONDS = env.float("PARLEY_WEBHOOK_BACKOFF_BASE_SECONDS", default=5.0)
# Webhook targets on loopback/private addresses are refused unless allowed (SSRF guard); tests allow loopback.
PARLEY_WEBHOOK_ALLOW_PRIVATE = env.bool("PARLEY_WEBHOOK_ALLOW_PRIVATE", default=DEBUG)
# Playback URLs on loopback/private/link-local addresses are refused unless allowed (on-premises media servers).
PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS = env.bool("PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS", default=False)
# Embedded default without Celery beat: the web process runs the periodic sweeps (webhook retries, expired
# disconnected members) itself. `make run` turns this on; production runs `celery beat` instead.
PARLEY_EMBEDDED_SWEEPS = env.bool("PARLEY_EMBEDDED_SWEEPS", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

# Egress (media/egress, media/tasks.py): recording retention (0 = keep forever) and RTMP supervision.
PARLEY_RECORDING_RETENTION_DAYS = env.int("PARLEY_RECORDING_RETENTION_DAYS", default=0)
PARLEY_RECORDING_ORPHAN_AFTER_SECONDS = env.int("PARLEY_RECORDING_ORPHAN_AFTER_SECONDS", default=60)
PARLEY_RTMP_MAX_FAILURES = env.int("PARLEY_RTMP_MAX_FAILURES", default=5)
PARLEY_RTMP_BACKOFF_BASE_SECONDS = env.float("PARLEY_RTMP_BACKOFF_BASE_SECONDS", default=1.0)
PARLEY_RTMP_BACKOFF_MAX_SECONDS = env.float("PARLEY_RTMP_BACKOFF_MAX_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE.update(
    {
        "recordings-recover-orphans": {"task": "media.tasks.recordings_recover_orphans", "schedule": 300.0},
        "streams-recover-orphans": {"task": "media.tasks.streams_recover_orphans", "schedule": 60.0},
        "playbacks-recover-orphans": {"task": "media.tasks.playbacks_recover_orphans", "schedule": 60.0},
        "recordings-apply-retention": {"task": "media.tasks.recordings_apply_retention", "schedule": 3600.0},
    }
)
