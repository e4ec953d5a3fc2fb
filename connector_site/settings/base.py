"""Base settings: the embedded default, overridden by environment variables.

See README.md "Configuration" for every variable. Production (``production.py``) requires
the ones that have no safe default.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Runtime state of the embedded default (SQLite file, generated keys, Celery queue folder).
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))


def _generated_once(name: str, make: Callable[[], str]) -> str:
    """Read a value kept in ``var/``, creating it on first use (embedded default only)."""
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


# ------------------------------------------------------------------------------ CORE
# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or _generated_once("secret.key", get_random_secret_key)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "connector_site.urls"
WSGI_APPLICATION = "connector_site.wsgi.application"
ASGI_APPLICATION = "connector_site.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

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
    "rest_framework_api_key",
    "drf_spectacular",
    "channels",
    "django_celery_beat",
    "accounts",
    "markets",
    "trading",
    "streams",
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
]

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

# ------------------------------------------------------------------------------ DATABASES
# https://docs.djangoproject.com/en/5.2/ref/databases/
# ATOMIC_REQUESTS stays off: an order row must be committed before its request leaves
# for the venue, so a crash mid-send still leaves the intent on record.
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file in the embedded default: WAL lets readers run
    # beside a writer, IMMEDIATE transactions take the write lock up front (no upgrade
    # deadlock), and the timeout waits for a busy writer instead of "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False

# ---------------------------------------------------------------------------- REDIS: CACHE, CHANNELS, CELERY
# One REDIS_URL carries the cache, the channel layer and the Celery broker in production.
REDIS_URL = env.str("REDIS_URL", default="")

# https://docs.djangoproject.com/en/5.2/topics/cache/
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # The database cache is shared by every local process and its add() is atomic, which
    # the Celery "never overlap" locks rely on. Created by `manage.py createcachetable`.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "cache_entries"}
    }

# https://channels.readthedocs.io/en/stable/topics/channel_layers.html
if REDIS_URL:
    # The pub/sub layer: ~83 µs per group_send whatever the group size (DESIGN.md).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    # Embedded default: the stream manager runs inside the web process, so memory suffices.
    CHANNEL_LAYERS = {"default": {"BACKEND": "streams.layers.EmbeddedChannelLayer"}}
# The stream manager inside the web process (embedded) or as `manage.py run_streams` (production).
STREAMS_IN_PROCESS = env.bool("STREAMS_IN_PROCESS", default=not REDIS_URL)

# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    # A broker that needs no server: kombu's filesystem transport on a shared folder.
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# Late acknowledgement: a task whose worker dies is redelivered; tasks are idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Write each fired entry's last run and run count at once (default: every 3 minutes), so the
# admin's periodic task list shows the schedule firing.
CELERY_BEAT_SYNC_EVERY = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# ------------------------------------------------------------------------------ AUTH
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

# ------------------------------------------------------------------------------ SECRETS AT REST
# Fernet keys for stored exchange secrets, newest first; independent of SECRET_KEY so a
# leaked or rotated SECRET_KEY neither exposes nor orphans them (see accounts/crypto.py).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [
    _generated_once("field-encryption.key", lambda: Fernet.generate_key().decode())
]

# ------------------------------------------------------------------------------ VENUES
EMULATOR_URL = env.str("EMULATOR_URL", default="http://127.0.0.1:8700")
# Where public market data comes from: "emulator" (embedded default), "live" or "sandbox".
MARKET_DATA_ENVIRONMENT = env.str("MARKET_DATA_ENVIRONMENT", default="emulator")
# While a venue fails (down, timing out, rate-limiting us), market-data reads answer with the
# last value held, flagged stale, if it is at most this many seconds old (0: never).
MARKET_DATA_STALE_HORIZON_S = env.float("MARKET_DATA_STALE_HORIZON_S", default=300.0)
# How often each process checks whether the daily job refreshed a venue's markets (seconds).
MARKETS_REFRESH_CHECK_SECONDS = env.float("MARKETS_REFRESH_CHECK_SECONDS", default=30.0)

# ------------------------------------------------------------------------------ STATIC FILES
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# The last finder serves JS libraries from installed packages (requirements-assets.txt).
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "streams.staticfinders.PackagedAssetsFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Embedded default: serve straight from the app folders, no collectstatic step.
WHITENOISE_USE_FINDERS = True

# ------------------------------------------------------------------------------ REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "connector_site.api_errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
}
# Requests per token (or staff session) per window, counted atomically (markets/throttling.py);
# empty turns it off. Used by the market-data endpoints.
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="600/min") or None
# Orders one token may place per window ("count/seconds"), so one tool cannot get the
# shared egress IP banned by a venue (trading/throttling).
ORDER_RATE_LIMIT = env.str("ORDER_RATE_LIMIT", default="50/10")
# A repeated Idempotency-Key waits this long for the first request's answer, and a key
# left behind by a crashed request is taken over after IDEMPOTENCY_STALE_SECONDS.
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=5.0)
IDEMPOTENCY_STALE_SECONDS = env.int("IDEMPOTENCY_STALE_SECONDS", default=60)
SPECTACULAR_SETTINGS = {
    "TITLE": "Exchange Connector API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# ------------------------------------------------------------------------------ SECURITY
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Health probes stay reachable over plain HTTP behind a TLS-terminating proxy.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# ------------------------------------------------------------------------------ LOGGING
# Readable lines in development, JSON lines in production (LOG_FORMAT=json); the redaction
# filter sits on every handler, so no record leaves with a key, secret, signature or token.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "connector_site.redaction.RedactSecretsFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # ccxt logs request URLs and headers at DEBUG; never let that through.
        "ccxt": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}
# Error reports (debug page, mail to ADMINS) also hide *_URL settings, which can hold
# database and Redis passwords that Django's default name filter lets through.
DEFAULT_EXCEPTION_REPORTER_FILTER = "connector_site.redaction.SafeReporterFilter"
