"""Settings for the EISHRO integrations hub.

Every value comes from the environment (or the git-ignored `.env` that `make` writes on first use),
each with a default that is safe for a developer's machine. Production must set SECRET_KEY and
FIELD_ENCRYPTION_KEYS; with DEBUG off the process refuses to start without them.
"""

import datetime as dt
import os
import sys
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("EISHRO_VAR_DIR", default=str(BASE_DIR / "var")))

VAR_DIR.mkdir(parents=True, exist_ok=True)
env = environ.Env()
# ENV_FILE names the file of settings to read (default: the project's `.env`); set it to an empty
# string to read no file at all, e.g. to test what the environment alone gives. Variables already set
# in the environment always win over the file.
env_file = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if env_file and Path(env_file).is_file():
    env.read_env(env_file)


def _refuse(message):
    # One readable line and a non-zero exit: a traceback from settings helps nobody at 3 a.m.
    sys.exit(f"eishro: configuration error: {message}")


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

if not SECRET_KEY:
    if not DEBUG:
        _refuse("SECRET_KEY is not set (run `make .env` for a development one, or set it in the environment).")
    SECRET_KEY = "insecure-development-only-key"  # noqa: S105 - DEBUG only
if not FIELD_ENCRYPTION_KEYS:
    _refuse("FIELD_ENCRYPTION_KEYS is not set (run `make .env` for a development key, or set it in the environment).")


def _check_fernet_keys(keys):
    # Refuse at start-up rather than on the first request that touches a credential. (Not translated:
    # settings are read before the translation machinery exists.)
    from cryptography.fernet import Fernet

    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            _refuse(
                f"FIELD_ENCRYPTION_KEYS: key {position} is not a url-safe base64 32-byte Fernet key "
                "(generate one with cryptography's Fernet.generate_key())."
            )


_check_fernet_keys(FIELD_ENCRYPTION_KEYS)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_celery_beat",
    "django_celery_results",
    "integrations",
    "payments",
    "shipping",
    "messaging",
    "smm",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files from gunicorn itself (compressed, cache-busted): the hub must
    # run without a separate web server in front, e.g. in docker-compose.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out account before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "eishro.urls"
WSGI_APPLICATION = "eishro.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'eishro.sqlite3'}"),
}
# Test databases are named per process so that two test runs on one machine never share one.
_test_suffix = env.str("EISHRO_TEST_DB_SUFFIX", default=str(os.getpid()))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file test database (not :memory:) so that a real Celery worker process can see it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-eishro-{_test_suffix}.sqlite3")}
    # WAL lets the web server read while the worker writes; synchronous=NORMAL is still crash-safe
    # in WAL mode and saves an fsync per commit (the embedded default is for development anyway).
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_test_suffix}"}
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache: shared by every process (circuit breakers, throttles, sandbox faults, locks) -----
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "eishro.cache.FileCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport, but writing whole files and setting an unreadable one aside in
    # `rejected` with a warning: kombu's own let a half-written file kill the worker (eishro.broker).
    CELERY_BROKER_TRANSPORT = "eishro.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "claimed_folder": str(CELERY_BROKER_DIR / "claimed"),
        "rejected_folder": str(CELERY_BROKER_DIR / "rejected"),
        "polling_interval": 0.1,
    }
else:
    # Redis keeps a delivered message until the worker acknowledges it (late, see below) and hands
    # it to another worker once it has gone unacknowledged for `visibility_timeout` seconds: that is
    # how soon a killed worker's messages come back, and also the longest a task may run before a
    # second worker starts it too (harmless: every task is idempotent, per-provider jobs also hold
    # their provider_lock). Redis's default of an hour left a killed worker's work waiting that
    # long; 300 s is above any of our tasks' run (one send: 30 s; a panel's poll or sync, a health
    # round: seconds to a minute) and an order's send never waits for it (the retry sweep sends a
    # queued order within a minute; an interrupted one is under review in about 2.5 minutes).
    # A broker that does not answer a connection in 5 s is down: the API does not hang on it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300),
        "socket_connect_timeout": 5,
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task's message is acknowledged once the task has finished, not when it arrives, so a worker
# stopped mid-task does not lose it: it is queued again at once by a warm shutdown (either broker),
# after Redis's visibility timeout (above: 300 s) if the worker was killed outright; the file broker
# keeps unacknowledged messages only in the worker's memory, so a killed worker loses those (an
# order's send is then the retry sweep's: the order's row is the outbox). A task may therefore run
# twice: provider writes are exactly-once for that reason (integrations.writes), and every other
# task is idempotent (docs/operations.md).
CELERY_TASK_ACKS_LATE = True
# A pool child that dies mid-task (prefork: OOM, segfault) has its task queued again rather than
# recorded as failed. Our threads pool has no children; this holds should the pool change.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A worker holds at most --concurrency unacknowledged messages: none wait behind a long task, and a
# killed worker owes at most that many. A message file that cannot be read at all is set aside in
# var/broker/rejected with a warning (eishro.broker); one Celery cannot decode, or whose task it
# does not know, Celery logs and drops.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's consumer, but woken when a pool thread queues a finished task's acknowledgement for it:
# Celery's own waited for its next timer (2 to 10 s) while the prefetch limit above kept it from
# fetching, so a threads worker ran --concurrency tasks per 2 or 10 s (eishro.consumer).
CELERY_WORKER_CONSUMER = "eishro.consumer:Consumer"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "Africa/Tripoli"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- i18n: Arabic first, English available ----------------------------------------------------
LANGUAGE_CODE = "ar"
LANGUAGES = [("ar", _("Arabic")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Africa/Tripoli"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("STATIC_MANIFEST", default=not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- e-mail -------------------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="EISHRO <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
OPERATIONS_EMAILS = env.list("OPERATIONS_EMAILS", default=[])

# --- the hub's own settings ----------------------------------------------------------------------
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=DEBUG)
# Where the simulators are reached from workers and the web server (demo data points providers here):
# by default where `make run` serves (RUN_ADDR, as runserver reads it), a wildcard bind on the loopback.
_run_host, _, _run_port = env.str("RUN_ADDR", default="127.0.0.1:8000").rpartition(":")
if _run_host in ("", "0.0.0.0", "0", "[::]", "::"):  # noqa: S104 - an address read here, not bound
    _run_host = "127.0.0.1"
SANDBOX_BASE_URL = env.str("SANDBOX_BASE_URL", default=f"http://{_run_host}:{_run_port}/sandbox")
INTEGRATION_LOG_RETENTION_MONTHS = env.int("INTEGRATION_LOG_RETENTION_MONTHS", default=6)
INTEGRATION_LOG_PARTITIONS_AHEAD = env.int("INTEGRATION_LOG_PARTITIONS_AHEAD", default=3)
INTEGRATION_LOG_BODY_LIMIT = env.int("INTEGRATION_LOG_BODY_LIMIT", default=16_384)
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)
WEBHOOK_TOLERANCE_SECONDS = env.int("WEBHOOK_TOLERANCE_SECONDS", default=300)
# Hosts an operator may not point a provider at (besides private ranges when not in sandbox mode).
PROVIDER_URL_ALLOW_PRIVATE = env.bool("PROVIDER_URL_ALLOW_PRIVATE", default=SANDBOX_ENABLED)
# Monitoring (see monitoring/health.py for the degraded rule these feed).
MONITORING_HEALTHCHECK_RETENTION_DAYS = env.int("MONITORING_HEALTHCHECK_RETENTION_DAYS", default=30)
MONITORING_ALERT_COOLDOWN_SECONDS = env.int("MONITORING_ALERT_COOLDOWN_SECONDS", default=600)
MONITORING_DEGRADED_WINDOW = env.int("MONITORING_DEGRADED_WINDOW", default=5)
MONITORING_DEGRADED_FAILURES = env.int("MONITORING_DEGRADED_FAILURES", default=2)
MONITORING_DASHBOARD_REFRESH_SECONDS = env.int("MONITORING_DASHBOARD_REFRESH_SECONDS", default=60)
# Payments: how long a card or wallet checkout stays open, how many working days (Sunday-Thursday) an
# unconfirmed bank transfer waits, and how long the API's Idempotency-Key answers are kept.
PAYMENT_CHECKOUT_EXPIRY_MINUTES = env.int("PAYMENT_CHECKOUT_EXPIRY_MINUTES", default=30)
PAYMENT_TRANSFER_EXPIRY_WORKING_DAYS = env.int("PAYMENT_TRANSFER_EXPIRY_WORKING_DAYS", default=3)
PAYMENT_IDEMPOTENCY_RETENTION_HOURS = env.int("PAYMENT_IDEMPOTENCY_RETENTION_HOURS", default=24)
# The seed's default SMM panels for every new merchant, without keys until the merchant sets them (smm.signals).
SMM_DEFAULT_PANELS_AT_REGISTRATION = env.bool("SMM_DEFAULT_PANELS_AT_REGISTRATION", default=True)

# --- brute force: failed sign-ins are limited per source (and per account where there is one) ----------
# Reverse proxies in front of gunicorn that append the client's address to X-Forwarded-For (the TLS
# proxy: 1). 0 = the connection's own address; a header nobody trusted wrote is never believed.
TRUSTED_PROXY_COUNT = max(0, env.int("TRUSTED_PROXY_COUNT", default=0))
# API tokens name no account until they are right: failures are counted per address. The limit leaves
# room for a misconfigured client's retries; tokens are 160 random bits, so this caps noise and load.
API_TOKEN_FAILURE_LIMIT = env.int("API_TOKEN_FAILURE_LIMIT", default=20)
API_TOKEN_FAILURE_COOLOFF_SECONDS = env.int("API_TOKEN_FAILURE_COOLOFF_SECONDS", default=900)
if API_TOKEN_FAILURE_LIMIT < 1 or API_TOKEN_FAILURE_COOLOFF_SECONDS < 1:
    _refuse("API_TOKEN_FAILURE_LIMIT and API_TOKEN_FAILURE_COOLOFF_SECONDS must be 1 or more.")
# The admin's sign-in (django-axes): locked per account *and* address, so that guessing from one place
# cannot lock the operators out from everywhere; a cool-off, never a permanent lock an attacker could set.
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("ADMIN_LOGIN_COOLOFF_MINUTES", default=15))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME < dt.timedelta(minutes=1):
    _refuse("ADMIN_LOGIN_FAILURE_LIMIT and ADMIN_LOGIN_COOLOFF_MINUTES must be 1 or more.")
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "integrations.lockout.client_address"
AXES_LOCKOUT_CALLABLE = "integrations.lockout.admin_lockout_response"  # 429, Retry-After, the admin's page
AXES_RESET_ON_SUCCESS = True
# Attempts refused during a lock are neither counted nor extend it: the lock ends a cool-off after
# the last counted failure, and a flood of refused attempts costs no database write.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The log line names the account and the address (never the password); no start-up banner.
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = []

# --- REST API -------------------------------------------------------------------------------------
# The schema and Swagger UI: open to anyone in development, to authenticated users in production.
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=DEBUG)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # TokenAuthentication that limits failed attempts per address (API_TOKEN_FAILURE_* above).
        "integrations.api.authentication.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "integrations.api.pagination.PagePagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # DRF's three, with a JSON parser that refuses bodies nested deeper than any of ours (a 400, not a
    # RecursionError's 500).
    "DEFAULT_PARSER_CLASSES": [
        "integrations.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["integrations.api.throttling.WriteRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"writes": env.str("API_WRITE_RATE", default="120/min")},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "integrations.api.errors.exception_handler",
    # DRF's throttles otherwise believe a client's own X-Forwarded-For (see TRUSTED_PROXY_COUNT).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EISHRO integrations hub API",
    "DESCRIPTION": "Merchants' API: SMM panels, orders, payments, shipments and provider health.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files: deployments and our machines have no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["integrations.api.docs.ApiDocsAccess"],
    # One name per choice set, whichever serializer field uses it (names of the schema before the
    # fields got their choices: generated clients keep their types).
    "ENUM_NAME_OVERRIDES": {
        "HealthStatusEnum": "integrations.models.Health",
        "IntegrationStatusEnum": "integrations.models.Status",
        "HealthCheckStatusEnum": "monitoring.models.CheckStatus",
        "OrderStatusEnum": "smm.models.OrderStatus",
        "OrderStatusLabelEnum": "smm.serializers.STATUS_LABEL_VALUES",
        "PaymentMethodEnum": "payments.serializers.METHOD_CHOICES",
    },
    # The default hook (enum components), then the error answers every operation can give.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "integrations.api.schema.add_error_responses",
    ],
}

# --- security (production values; `manage.py check --deploy` is clean with DEBUG off) ------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "integrations.redaction.RedactingFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
