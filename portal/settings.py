"""Settings for the GPU Alliance Portal: one module, read from the environment.

With no environment at all it runs: SQLite, Celery eager, local-memory cache, console e-mail.
``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``CACHE_URL`` switch to real services.
``PORTAL_ENV=production`` turns on the production flags and requires ``SECRET_KEY``.
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

PORTAL_ENV = env.str("PORTAL_ENV", default="development")
PRODUCTION = PORTAL_ENV == "production"

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # required: no default in production
else:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-do-not-use-in-production")

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rules.apps.AutodiscoverRulesConfig",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_htmx",
    "template_partials",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core",
    "apps.accounts",
    "apps.governance",
    "apps.providers",
    "apps.allocations",
    "apps.organizations",
    "apps.workinggroups",
    "apps.grants",
    "apps.reports",
    "apps.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.core.middleware.PortalLocaleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "apps.accounts.middleware.StaffMFARequiredMiddleware",
    "apps.core.middleware.DatabaseTimeoutMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "apps.core.context_processors.navigation",
            ],
        },
    },
]

# --- Data -------------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
# PostgreSQL bounds, so one stuck session cannot block everybody forever (milliseconds; 0 = none).
# Web requests wait little (a user is waiting; a timeout answers 503 with Retry-After, see
# apps.core.middleware.DatabaseTimeoutMiddleware); Celery workers and beat may wait longer (a timeout
# retries the task, apps.core.tasks.PortalTask). portal/celery.py switches a worker to its bounds.
DATABASE_TIMEOUTS = {
    "web": {
        "lock_timeout": env.int("DB_LOCK_TIMEOUT_MS", default=5_000),
        "statement_timeout": env.int("DB_STATEMENT_TIMEOUT_MS", default=30_000),
        "idle_in_transaction_session_timeout": env.int("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=60_000),
    },
    "worker": {
        "lock_timeout": env.int("DB_WORKER_LOCK_TIMEOUT_MS", default=30_000),
        "statement_timeout": env.int("DB_WORKER_STATEMENT_TIMEOUT_MS", default=300_000),
        "idle_in_transaction_session_timeout": env.int(
            "DB_WORKER_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=300_000
        ),
    },
}
DATABASE_TIMEOUT_RETRY_AFTER = env.int("DB_TIMEOUT_RETRY_AFTER", default=5)  # seconds, the 503's Retry-After
DATABASE_TIMEOUT_TASK_RETRIES = env.int("DB_TIMEOUT_TASK_RETRIES", default=5)  # then the task fails
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    from apps.core.db import timeout_options

    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = timeout_options(_options.get("options", ""), DATABASE_TIMEOUTS["web"])
    _options.setdefault("application_name", "portal-web")  # seen in pg_stat_activity
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://portal")}

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[GPU Alliance] "
ACCOUNT_ADAPTER = "apps.accounts.adapters.AccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "apps.accounts.forms.SignupExtraForm"
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "5/5m/key,20/5m/ip",
    "signup": "10/h/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "5/h/ip,3/h/key",
    "reset_password_from_key": "20/m/ip",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "GPU Alliance Portal"
# Staff must have TOTP before they can reach anything but their own account pages.
PORTAL_STAFF_MFA_REQUIRED = env.bool("PORTAL_STAFF_MFA_REQUIRED", default=True)

# --- I18N -------------------------------------------------------------------------------------
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

# --- Static -----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "apps.core.storage.PortalStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "/media/"

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="GPU Alliance <noreply@gpu-alliance.example>")
SECRETARIAT_EMAIL = env.str("SECRETARIAT_EMAIL", default="secretariat@gpu-alliance.example")

# --- Celery -----------------------------------------------------------------------------------
_BROKER_FROM_ENV = env.str("CELERY_BROKER_URL", default="")
CELERY_BROKER_URL = _BROKER_FROM_ENV or "memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not _BROKER_FROM_ENV)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Publishing must not hang a request when the broker is down: the outbox sweeper re-sends later.
_QUICK_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_TRANSPORT_OPTIONS = _QUICK_RETRY
CELERY_TASK_PUBLISH_RETRY_POLICY = _QUICK_RETRY
CELERY_BROKER_CONNECTION_TIMEOUT = 2
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu 5.7's Redis transport kills the worker when the broker goes away while it holds
    # unacknowledged messages (acks_late, countdown retries); portal/broker.py fixes it.
    # (CELERY_BROKER_TRANSPORT=redis selects kombu's own, e.g. to compare: bench/broker_outage_soak.py)
    CELERY_BROKER_TRANSPORT = env.str("CELERY_BROKER_TRANSPORT", default="portal.broker:RedisTransport")
# A worker keeps reconnecting through a broker outage of any length (Celery's default gives up, and
# exits, after 100 attempts: about 50 minutes); the outbox sweeper re-sends what waited meanwhile.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "apps.providers.tasks.outbox_sweep_task", "schedule": 30.0},
    "providers-reconcile": {"task": "apps.providers.tasks.reconcile_all_task", "schedule": 600.0},
    "providers-usage-pull": {"task": "apps.providers.tasks.usage_pull_all_task", "schedule": 300.0},
    "exports-housekeeping": {"task": "apps.reports.tasks.export_housekeeping_task", "schedule": 600.0},
    "audit-checkpoint": {"task": "apps.governance.tasks.audit_checkpoint_send_task", "schedule": 600.0},
    "audit-verify": {
        "task": "apps.governance.tasks.audit_verification_run_task",
        "schedule": crontab(hour=3, minute=30),  # daily, against every provider's checkpoints
    },
    "grants-report-reminders": {
        "task": "apps.grants.tasks.report_reminders_task",
        "schedule": crontab(hour=8, minute=0),
    },
    "workinggroups-digest": {
        "task": "apps.workinggroups.tasks.discussion_digest_task",
        "schedule": crontab(hour=7, minute=0),  # CELERY_TIMEZONE: Asia/Tokyo
    },
}

# --- Security ---------------------------------------------------------------------------------
# Cookies: the session, CSRF and language cookies are all Secure in production (HTTPS only) and
# SameSite=Lax (sent on top-level navigation, not on cross-site POSTs or subrequests). The session
# and language cookies are HttpOnly; the CSRF cookie is too (htmx reads the token from the page).
# In production the session and CSRF cookies carry the __Host- prefix: browsers then refuse them
# unless Secure, for path / and without a Domain, so a sibling subdomain cannot plant them.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_NAME = "django_language"
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe the WSGI server over plain HTTP
    # Behind a TLS-terminating proxy that sets the header (and strips it from clients), e.g.
    # SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https; empty when the WSGI server terminates TLS.
    _proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=["HTTP_X_FORWARDED_PROTO", "https"])
    if _proxy_header and len(_proxy_header) != 2:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value' (or empty).")
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if _proxy_header else None
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

# Exports (apps/reports): lists up to this many rows stream at once; larger ones are written by a
# worker and kept for EXPORT_TTL_HOURS.
EXPORT_STREAM_MAX_ROWS = env.int("EXPORT_STREAM_MAX_ROWS", default=5000)
EXPORT_TTL_HOURS = env.int("EXPORT_TTL_HOURS", default=24)
EXPORT_MAX_RUNNING_PER_USER = 3

# The member API (apps/api): personal access tokens, JSON errors, OpenAPI by drf-spectacular with
# an offline Swagger UI (sidecar).
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # Personal access tokens only (Authorization: Bearer gap_…); no session, so no CSRF to think of.
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.api.authentication.PersonalAccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "apps.api.permissions.TokenScope",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.api.pagination.ApiPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "apps.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["apps.api.throttling.TokenUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_user": env.str("API_RATE_LIMIT", default="3600/hour")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GPU Alliance Portal member API",
    "DESCRIPTION": "Your organizations, allocation rounds and requests, grants and usage. See docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "PATH_CONVERTER_OVERRIDES": {"api_id": int},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "celery.app.trace": {"level": "WARNING"}},
}

# --- Providers ----------------------------------------------------------------------------------
# Shared secrets per provider slug ("kddi=…,sakura=…"). Only the demo (PORTAL_DEMO=1, set by
# `make run` and the tests' settings) falls back to the guessable "demo-secret-<slug>"; anywhere else a
# provider without a secret can neither push usage nor receive grants, and the portal refuses to
# start when asked for demo secrets in production or given one without PORTAL_DEMO.
PORTAL_DEMO = env.bool("PORTAL_DEMO", default=False)
PROVIDER_SECRETS = env.dict("PROVIDER_SECRETS", default={})
PROVIDER_DEMO_SECRETS = PORTAL_DEMO
if PORTAL_DEMO and PRODUCTION:
    raise ImproperlyConfigured("PORTAL_DEMO=1 (guessable demo provider secrets) is refused in production.")
_demo_secrets_given = sorted(
    slug for slug, secret in PROVIDER_SECRETS.items() if not secret or secret.startswith("demo-secret")
)
if _demo_secrets_given and not PORTAL_DEMO:
    raise ImproperlyConfigured(
        f"PROVIDER_SECRETS holds an empty or demo secret for {', '.join(_demo_secrets_given)}; "
        "set real secrets (or PORTAL_DEMO=1 for the demo)."
    )
PROVIDER_HTTP_TIMEOUT = env.float("PROVIDER_HTTP_TIMEOUT", default=5.0)
OUTBOX_BACKOFF_BASE = env.float("OUTBOX_BACKOFF_BASE", default=2.0)  # seconds; doubled per attempt
OUTBOX_BACKOFF_MAX = env.float("OUTBOX_BACKOFF_MAX", default=600.0)
# The whole of one provider request (connect, send, every byte of the answer); 0 = 3 × the time-out.
PROVIDER_HTTP_DEADLINE = env.float("PROVIDER_HTTP_DEADLINE", default=0.0)
# A claim older than this is stale. Never shorter than the request deadline plus a margin
# (apps.providers.services.claim_seconds), so a claim cannot expire while its request may still run.
OUTBOX_CLAIM_SECONDS = env.float("OUTBOX_CLAIM_SECONDS", default=60.0)
# A row enqueued less than this long ago is not enqueued again by the sweeper.
OUTBOX_REENQUEUE_SECONDS = env.float("OUTBOX_REENQUEUE_SECONDS", default=120.0)
OUTBOX_FAILING_AFTER_ATTEMPTS = 5  # shown as failing to staff from then on (still retried)
# The audit chain's head is checkpointed with every provider on the beat and after this many events
# (apps.governance.checkpoints; docs/operations.md "Audit log").
AUDIT_CHECKPOINT_EVERY_EVENTS = env.int("AUDIT_CHECKPOINT_EVERY_EVENTS", default=1000)

# --- Operations ---------------------------------------------------------------------------------
# Workers write a heartbeat this often (apps.core.worker); the health endpoint calls a worker alive
# when its heartbeat is younger than HEALTH_WORKER_STALE_SECONDS, and the outbox stale when a
# delivery has been due for longer than HEALTH_OUTBOX_STALE_SECONDS (the sweeper runs every 30 s).
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=15.0)
HEALTH_WORKER_STALE_SECONDS = env.float("HEALTH_WORKER_STALE_SECONDS", default=60.0)
HEALTH_OUTBOX_STALE_SECONDS = env.float("HEALTH_OUTBOX_STALE_SECONDS", default=180.0)
# /metrics (Prometheus text format): staff, or "Authorization: Bearer <METRICS_TOKEN>" when set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Portal -----------------------------------------------------------------------------------
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024  # usage pushes carry up to 10,000 records
DIRECTORY_PAGE_SIZE = 50
REVIEW_QUEUE_PAGE_SIZE = 50
