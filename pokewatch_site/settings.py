"""PokeWatch settings.

Everything is read from the environment (see README.md, "Configuration"). The defaults run
on a laptop with nothing installed: SQLite under ``var/``, a local-memory cache and no
Redis. Production (``DEBUG`` off) refuses to start with an unsafe configuration.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from pokewatch_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_int_list,
    env_list,
    env_str,
)
from pokewatch_site.process_model import check_workers, default_workers

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("POKEWATCH_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# --- Django basics -------------------------------------------------------------------------

_INSECURE_DEV_KEY = "django-insecure-pokewatch-local-development-only"
DEBUG = env_bool("DEBUG", default=True)
SECRET_KEY = env_str("SECRET_KEY", _INSECURE_DEV_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

if not DEBUG:
    if SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 40:
        raise ImproperlyConfigured(
            "DEBUG is off but SECRET_KEY is unset, a development key or shorter than 40 "
            "characters. Set SECRET_KEY to a long random value."
        )
    if not env_str("ALLOWED_HOSTS"):
        raise ImproperlyConfigured(
            "DEBUG is off: set ALLOWED_HOSTS to the host names this site serves."
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",  # admin login throttling
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",  # request, latency and database metrics for /metrics
    "prices",
    "accounts",
    "pipelines",
    # The site package: commands that span the apps (bootstrap). No apps.py: Django gives
    # it a default AppConfig, and it stays the top of the app graph, importing any app.
    "pokewatch_site",
]

MIDDLEWARE = [
    # First and last: django-prometheus times and counts every request and response.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "pokewatch_site.middleware.RequestIDMiddleware",
    # Under /api/, plain HTTP is refused with JSON instead of redirected by the next one.
    "pokewatch_site.middleware.APIHTTPSOnlyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "pokewatch_site.middleware.APIErrorMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # X-RateLimit-* and Retry-After of requests the DRF throttle counted.
    "accounts.ratelimit.RateLimitHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Last but one, as django-axes asks: turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "pokewatch_site.urls"
WSGI_APPLICATION = "pokewatch_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database ------------------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'pokewatch.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; a busy timeout instead of
    # "database is locked" errors under the embedded default.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
# django-prometheus's wrappers of the same backends count queries, errors and connections.
DATABASES["default"]["ENGINE"] = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}.get(DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ---------------------------------------------------------------------------------
# Redis serves three uses, each on its own DB so that clearing one never touches another:
# the Celery broker, the cache and the rate-limit counters. REDIS_URL names the server and
# the first of three DBs: redis://host:6379/N puts the broker on DB N, the cache on N+1 and
# the counters on N+2 (no number: 0, 1, 2). REDIS_BROKER_DB, REDIS_CACHE_DB and
# REDIS_RATELIMIT_DB move one use; CELERY_BROKER_URL, REDIS_CACHE_URL and
# REDIS_RATELIMIT_URL give one use a whole URL of its own (another server, say).

REDIS_URL = env_str("REDIS_URL").rstrip("/")


def _redis_url_db(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    if path and not path.isdigit():
        raise ImproperlyConfigured(f"REDIS_URL's path must be a DB number, got {path!r}")
    return int(path or 0)


def _redis_db_url(db: int) -> str:
    """REDIS_URL (scheme, credentials, host, port, options) on DB ``db``."""
    return urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{db}"))


_REDIS_BASE_DB = _redis_url_db(REDIS_URL) if REDIS_URL else 0
REDIS_BROKER_DB = env_int("REDIS_BROKER_DB", _REDIS_BASE_DB)
REDIS_CACHE_DB = env_int("REDIS_CACHE_DB", _REDIS_BASE_DB + 1)
REDIS_RATELIMIT_DB = env_int("REDIS_RATELIMIT_DB", _REDIS_BASE_DB + 2)
REDIS_CACHE_URL = env_str("REDIS_CACHE_URL") or (_redis_db_url(REDIS_CACHE_DB) if REDIS_URL else "")
REDIS_RATELIMIT_URL = env_str("REDIS_RATELIMIT_URL") or (
    _redis_db_url(REDIS_RATELIMIT_DB) if REDIS_URL else ""
)
if REDIS_URL:
    _redis_options = {
        # django-redis's client behind a circuit breaker: a server that failed or timed
        # out is skipped for POKEWATCH_OUTAGE_INTERVAL seconds, logged once per interval.
        "CLIENT_CLASS": "pokewatch_site.redis_client.CircuitBreakerClient",
        "SOCKET_CONNECT_TIMEOUT": env_float("REDIS_CONNECT_TIMEOUT", 0.5),
        "SOCKET_TIMEOUT": env_float("REDIS_TIMEOUT", 0.5),
        # Reads fall back to the database when Redis is down, instead of failing.
        "IGNORE_EXCEPTIONS": True,
    }
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
            "KEY_PREFIX": "pokewatch",
            "OPTIONS": _redis_options,
        },
        "ratelimit": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_RATELIMIT_URL,
            "KEY_PREFIX": "pokewatch",
            "OPTIONS": _redis_options,
        },
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "pokewatch-default",
        },
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "pokewatch-ratelimit",
        },
    }
    # django-ratelimit refuses a per-process cache because several workers would each
    # count separately. The embedded default is one process (make run), so that is
    # exactly right here; with REDIS_URL the counters live in Redis DB 2 and the checks
    # stay on. Production refuses several workers without Redis (see below).
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
# The breaker logs an outage once per interval; a traceback per ignored call would not.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
# How long a dependency that failed (Redis, the broker) is treated as down before it is
# tried again, and the least time between two warnings about it.
POKEWATCH_OUTAGE_INTERVAL = env_float("POKEWATCH_OUTAGE_INTERVAL", 5.0)
# One process model (pokewatch_site.process_model, which config/gunicorn.conf.py asks
# too): WEB_CONCURRENCY defaults to 4 workers with REDIS_URL and 1 without; several
# without it refuse to start (gunicorn refuses them whatever DEBUG says).
if not DEBUG:
    check_workers(default_workers())

# --- Auth, i18n, static --------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): after POKEWATCH_LOGIN_FAILURE_LIMIT wrong passwords for
# one username from one client IP, that pair is refused (429, a lockout page), even with the
# right password, until POKEWATCH_LOGIN_COOLOFF_MINUTES have passed without another
# failure. Attempts are database rows, so every worker and process agrees on them.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("POKEWATCH_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("POKEWATCH_LOGIN_COOLOFF_MINUTES", 15))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME.total_seconds() <= 0:
    raise ImproperlyConfigured(
        "POKEWATCH_LOGIN_FAILURE_LIMIT and POKEWATCH_LOGIN_COOLOFF_MINUTES must be positive."
    )
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_RESET_ON_SUCCESS = True
# The client IP by the same rule as the rate limits (X-Forwarded-For only behind a proxy).
AXES_CLIENT_IP_CALLABLE = "accounts.login.client_ip_address"
AXES_LOCKOUT_TEMPLATE = "accounts/login_locked.html"
# No banner at every process start; failures and lockouts are still logged (warnings).
AXES_VERBOSE = False
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"  # filled by collectstatic; served by WhiteNoise
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG  # in development, straight from the apps' static folders

# --- REST framework ------------------------------------------------------------------------

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so a missing key answers 401 with "WWW-Authenticate: Api-Key".
        "accounts.authentication.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasAPIKeyOrStaff"],
    # Per key (django-ratelimit counters); a view's throttle_scope is its group.
    "DEFAULT_THROTTLE_CLASSES": ["accounts.ratelimit.RateLimitThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "pokewatch_site.api.StaffBrowsableAPIRenderer",
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "pokewatch_site.api.StaffOnlyBrowsableNegotiation",
    # DRF's JSON parser, refusing non-text charsets and too-deep nesting with a 400.
    "DEFAULT_PARSER_CLASSES": ["pokewatch_site.api.StrictJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "pokewatch_site.api.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "pokewatch_site.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PokeWatch API",
    "DESCRIPTION": (
        "Fair value and BUY/HOLD/SELL signals for Pokémon cards. Send your key as "
        "`X-API-Key: <key>` or `Authorization: Api-Key <key>`. Errors are always "
        '`{"detail": "..."}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Rate limits (django-ratelimit), per API key; per client IP on public endpoints -------

RATELIMIT_USE_CACHE = "ratelimit"
# If the counters' cache is unreachable, let reads through (logged) rather than refuse
# every request: an outage of Redis must not take the read API down with it.
RATELIMIT_FAIL_OPEN = env_bool("RATELIMIT_FAIL_OPEN", True)
POKEWATCH_RATES = {
    "read": env_str("POKEWATCH_RATE_READ", "120/m"),
    "batch": env_str("POKEWATCH_RATE_BATCH", "30/m"),
    "public": env_str("POKEWATCH_RATE_PUBLIC", "60/m"),
}
# The same defaults, where DRF looks for a throttle scope's rate.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = POKEWATCH_RATES
# How many reverse proxies in front of the app append to X-Forwarded-For: the client IP
# (rate limits, admin login throttling) is the Nth entry from the right; 0 trusts none
# (REMOTE_ADDR). POKEWATCH_TRUSTED_PROXY=1, the older switch, means one hop.
POKEWATCH_TRUSTED_PROXY_HOPS = env_int(
    "POKEWATCH_TRUSTED_PROXY_HOPS", 1 if env_bool("POKEWATCH_TRUSTED_PROXY", False) else 0
)
if POKEWATCH_TRUSTED_PROXY_HOPS < 0:
    raise ImproperlyConfigured(
        f"POKEWATCH_TRUSTED_PROXY_HOPS must be 0 or more, got {POKEWATCH_TRUSTED_PROXY_HOPS}"
    )

# --- Security headers, CORS, request size ----------------------------------------------

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# Production answers HTTPS only. Behind a proxy that terminates TLS, set
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https (only if the proxy always sets or
# strips that header), or SECURE_SSL_REDIRECT=0 if the proxy itself redirects.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Container and load-balancer probes; Prometheus scraping over the private network.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$", r"^metrics$"]
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER")
if _proxy_header:
    if len(_proxy_header) != 2:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1])
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("POKEWATCH_MAX_BODY_BYTES", 64 * 1024)
# Content Security Policy (django-csp) on every response: the admin, the browsable API and
# the Swagger UI load only their own static files (the docs' init script is a file too:
# SpectacularSwaggerSplitView). Inline style attributes stay allowed (the admin and
# Swagger UI set some); inline scripts, other origins, plugins and framing do not.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# The local development front ends only with DEBUG on; production allows no origin unless
# CORS_ALLOWED_ORIGINS names it.
CORS_ALLOWED_ORIGINS = env_list(
    "CORS_ALLOWED_ORIGINS",
    ["http://localhost:3000", "http://127.0.0.1:3000", "http://localhost:5173"] if DEBUG else [],
)
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "origin",
    "x-api-key",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = ["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-Request-ID"]

# --- Prediction cache ---------------------------------------------------------------------

POKEWATCH_PREDICTION_CACHE_TTL = env_int("POKEWATCH_PREDICTION_CACHE_TTL", 300)

# --- PokeWatch -----------------------------------------------------------------------------

POKEWATCH_CARDS_FILE = BASE_DIR / "config" / "cards.yaml"
POKEWATCH_DEMO_CARDS_FILE = BASE_DIR / "config" / "demo" / "cards.yaml"
POKEWATCH_DEMO_PRICES_FILE = BASE_DIR / "config" / "demo" / "tcgplayer_market_prices_dev.csv"
POKEWATCH_PRICE_SOURCE = env_str("POKEWATCH_PRICE_SOURCE", "tcgcsv")
# tcgcsv.com: TCGplayer's prices for every product, free, daily archives since 2024-02-08.
# A local mirror (or a test server) laid out like the site works too.
POKEWATCH_TCGCSV_URL = env_str("POKEWATCH_TCGCSV_URL", "https://tcgcsv.com")
POKEWATCH_TCGCSV_CATEGORY = env_int("POKEWATCH_TCGCSV_CATEGORY", 3)  # 3: Pokémon (English)
POKEWATCH_TCGCSV_TIMEOUT = env_float("POKEWATCH_TCGCSV_TIMEOUT", 30.0)
POKEWATCH_TCGCSV_MAX_RETRIES = env_int("POKEWATCH_TCGCSV_MAX_RETRIES", 4)
POKEWATCH_TCGCSV_CACHE_DIR = VAR_DIR / "tcgcsv"  # downloaded archives and catalog metadata
# Which (product, printing) pairs become cards: those of these groups (sets; empty: the
# whole catalog) whose price reaches the minimum when first seen.
POKEWATCH_TCGCSV_GROUPS = env_int_list("POKEWATCH_TCGCSV_GROUPS")
POKEWATCH_TCGCSV_MIN_PRICE = Decimal(str(env_float("POKEWATCH_TCGCSV_MIN_PRICE", 0.0)))
POKEMON_PRICE_TRACKER_API_KEY = env_str("POKEMON_PRICE_TRACKER_API_KEY")
POKEMON_PRICE_TRACKER_BASE_URL = env_str(
    "POKEMON_PRICE_TRACKER_BASE_URL", "https://www.pokemonpricetracker.com/api/v2"
)
POKEMON_PRICE_TRACKER_TIMEOUT = env_float("POKEMON_PRICE_TRACKER_TIMEOUT", 10.0)
POKEMON_PRICE_TRACKER_MAX_RETRIES = env_int("POKEMON_PRICE_TRACKER_MAX_RETRIES", 4)

# --- Model, signals and the quality gate (see docs/model.md) ------------------------------

# Fair value = the coming H-day median price. 30 by default: over 7 days, moves large
# enough to signal on are too rare for any rule to speak (docs/model.md).
POKEWATCH_HORIZON_DAYS = env_int("POKEWATCH_HORIZON_DAYS", 30)
if not 1 <= POKEWATCH_HORIZON_DAYS <= 90:
    raise ImproperlyConfigured(
        f"POKEWATCH_HORIZON_DAYS must be between 1 and 90, got {POKEWATCH_HORIZON_DAYS}"
    )
# `band` (BUY below fair_low, SELL above fair_high) or `deviation` (the thresholds below).
POKEWATCH_SIGNAL_RULE = env_choice("POKEWATCH_SIGNAL_RULE", "band", ("band", "deviation"))
POKEWATCH_BUY_THRESHOLD = env_float("POKEWATCH_BUY_THRESHOLD", 0.10)
POKEWATCH_SELL_THRESHOLD = env_float("POKEWATCH_SELL_THRESHOLD", 0.15)
POKEWATCH_SERVING_WINDOW_DAYS = env_int("POKEWATCH_SERVING_WINDOW_DAYS", 365)
# Served signals are kept (and graded) this many days back.
POKEWATCH_TRACK_RECORD_DAYS = env_int("POKEWATCH_TRACK_RECORD_DAYS", 365)
POKEWATCH_GATE_MIN_COVERAGE = env_float("POKEWATCH_GATE_MIN_COVERAGE", 0.95)
# The promoted estimator's band must hold this share of realised medians, walk-forward.
POKEWATCH_GATE_BAND_COVERAGE_MIN = env_float("POKEWATCH_GATE_BAND_COVERAGE_MIN", 0.70)
POKEWATCH_GATE_BAND_COVERAGE_MAX = env_float("POKEWATCH_GATE_BAND_COVERAGE_MAX", 0.90)
# A candidate may be this much (relative) worse on MAPE than the champion and still pass.
POKEWATCH_GATE_MAPE_TOLERANCE = env_float("POKEWATCH_GATE_MAPE_TOLERANCE", 0.0)
# Threads scikit-learn's OpenMP code may use. 1 by default: on small data, spinning
# threads cost more than they gain, and Celery's prefork children must stay single-threaded.
POKEWATCH_ML_THREADS = env_int("POKEWATCH_ML_THREADS", 1)
POKEWATCH_REGISTERED_MODEL = env_str("POKEWATCH_REGISTERED_MODEL", "pokewatch-fair-value")
# Drift (pipelines/drift.py): every training run and each day's scoring compare the features
# and predictions of the latest this-many days with the training window; a feature whose
# population stability index is above the threshold counts as drifted.
POKEWATCH_DRIFT_WINDOW_DAYS = env_int("POKEWATCH_DRIFT_WINDOW_DAYS", 14)
POKEWATCH_DRIFT_PSI_THRESHOLD = env_float("POKEWATCH_DRIFT_PSI_THRESHOLD", 0.2)
if POKEWATCH_DRIFT_WINDOW_DAYS < 1 or not POKEWATCH_DRIFT_PSI_THRESHOLD > 0:
    raise ImproperlyConfigured(
        "POKEWATCH_DRIFT_WINDOW_DAYS must be 1 or more and POKEWATCH_DRIFT_PSI_THRESHOLD above "
        f"0, got {POKEWATCH_DRIFT_WINDOW_DAYS} and {POKEWATCH_DRIFT_PSI_THRESHOLD}"
    )
# The pipeline works on shards of this many cards (peak memory: one shard's, whatever the
# catalog; pipelines/sharding.py). On Celery, the shards run on the workers of the queue.
POKEWATCH_SHARD_CARDS = env_int("POKEWATCH_SHARD_CARDS", 5000)
POKEWATCH_SHARDS_ON_CELERY = env_bool("POKEWATCH_SHARDS_ON_CELERY", False)
POKEWATCH_SHARD_QUEUE = env_str("POKEWATCH_SHARD_QUEUE", "pokewatch-shards")
POKEWATCH_SHARD_PICKUP_SECONDS = env_int("POKEWATCH_SHARD_PICKUP_SECONDS", 300)

# --- MLflow and ZenML: local stores under var/ unless pointed elsewhere --------------------

MLFLOW_TRACKING_URI = env_str("MLFLOW_TRACKING_URI") or f"sqlite:///{VAR_DIR / 'mlflow.db'}"
MLFLOW_ARTIFACT_ROOT = env_str("MLFLOW_ARTIFACT_ROOT") or (VAR_DIR / "mlflow-artifacts").as_uri()
MLFLOW_EXPERIMENT_NAME = env_str("MLFLOW_EXPERIMENT_NAME", "pokewatch-fair-value")
ZENML_CONFIG_PATH = env_str("ZENML_CONFIG_PATH") or str(VAR_DIR / "zenml")

# --- Celery: worker and beat ---------------------------------------------------------------
# With REDIS_URL the broker is its first DB (see "Cache" above); without it, an embedded
# broker that needs no server: kombu's SQLAlchemy transport on a SQLite file under var/.

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or (
    _redis_db_url(REDIS_BROKER_DB)
    if REDIS_URL
    else f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "pokewatch")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # outcomes are recorded on TrainingRun rows, not results
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# A task is acknowledged when it finishes, and re-queued if its worker process dies, so a
# killed training run is retried rather than lost; one task at a time per process.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The longest a training run may take; the hard limit kills it a little later.
POKEWATCH_TRAINING_SOFT_LIMIT = env_int("POKEWATCH_TRAINING_SOFT_LIMIT", 3600)
POKEWATCH_TRAINING_HARD_LIMIT = POKEWATCH_TRAINING_SOFT_LIMIT + 300
# A running training run heartbeats this often; the sweep (POKEWATCH_SWEEP_CRON, and every
# new trigger) fails a running run whose heartbeat is older than the timeout (its worker
# died), so the slot is free again within timeout + one sweep interval.
POKEWATCH_TRAINING_HEARTBEAT_SECONDS = env_int("POKEWATCH_TRAINING_HEARTBEAT_SECONDS", 30)
POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT = env_int("POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT", 180)
if not 0 < 2 * POKEWATCH_TRAINING_HEARTBEAT_SECONDS <= POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT:
    raise ImproperlyConfigured(
        "POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT must be at least twice "
        "POKEWATCH_TRAINING_HEARTBEAT_SECONDS (a positive number of seconds), got "
        f"{POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT} and {POKEWATCH_TRAINING_HEARTBEAT_SECONDS}"
    )
# Redis re-delivers an unacknowledged task after visibility_timeout: it must be longer than
# the longest run, or a long run would be started twice.
_redis_uses = {"cache": REDIS_CACHE_URL, "rate-limit counters": REDIS_RATELIMIT_URL}
if CELERY_BROKER_URL.startswith("redis"):
    _redis_uses["broker"] = CELERY_BROKER_URL
if REDIS_URL and len(set(_redis_uses.values())) < len(_redis_uses):
    raise ImproperlyConfigured(
        "Two Redis uses share one DB (clearing the cache would clear the other): "
        + ", ".join(f"{use} {url.rpartition('@')[2]}" for use, url in _redis_uses.items())
    )
# Every broker call has a time limit: a publish to a broker that accepts connections but
# never answers would otherwise wait forever (kombu's socket_timeout defaults to none).
POKEWATCH_BROKER_TIMEOUT = env_float("POKEWATCH_BROKER_TIMEOUT", 2.0)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "visibility_timeout": POKEWATCH_TRAINING_HARD_LIMIT + 3600,
        "socket_connect_timeout": POKEWATCH_BROKER_TIMEOUT,
        "socket_timeout": POKEWATCH_BROKER_TIMEOUT,
    }
    if CELERY_BROKER_URL.startswith("redis")
    else {}
)
CELERY_BROKER_CONNECTION_TIMEOUT = POKEWATCH_BROKER_TIMEOUT
# A publish (from the web or a command) tries twice at most, then raises.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}
POKEWATCH_TRAINING_CRON = env_str("POKEWATCH_TRAINING_CRON", "0 3 * * *")
POKEWATCH_COLLECT_CRON = env_str("POKEWATCH_COLLECT_CRON", "0 1 * * *")
POKEWATCH_SWEEP_CRON = env_str("POKEWATCH_SWEEP_CRON", "* * * * *")


def _crontab(name: str, value: str) -> Any:
    from celery.schedules import crontab

    fields = value.split()
    if len(fields) != 5:
        raise ImproperlyConfigured(
            f"{name} must be a 5-field crontab like '0 3 * * *', got {value!r}"
        )
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute, hour, day_of_week, day_of_month, month_of_year)
    except Exception as exc:  # celery raises ValueError / ParseException
        raise ImproperlyConfigured(f"{name}: invalid crontab {value!r}: {exc}") from None


# Missed runs expire instead of piling up: a task not started within its window is dropped.
CELERY_BEAT_SCHEDULE = {
    "nightly-training": {
        "task": "pipelines.tasks.scheduled_training",
        "schedule": _crontab("POKEWATCH_TRAINING_CRON", POKEWATCH_TRAINING_CRON),
        "options": {"expires": 3600},
    },
    "daily-price-collection": {
        "task": "pipelines.tasks.collect_prices_task",
        "schedule": _crontab("POKEWATCH_COLLECT_CRON", POKEWATCH_COLLECT_CRON),
        "options": {"expires": 3600},
    },
    "sweep-dead-training-runs": {
        "task": "pipelines.tasks.sweep_training_runs",
        "schedule": _crontab("POKEWATCH_SWEEP_CRON", POKEWATCH_SWEEP_CRON),
        "options": {"expires": 60},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Metrics (/metrics, Prometheus; docs/operations.md "Monitoring") ------------------------
# The bearer token /metrics requires; unset, it answers loopback clients only.
POKEWATCH_METRICS_TOKEN = env_str("POKEWATCH_METRICS_TOKEN")
# The Celery worker serves its own metrics on this port (same token rule); unset: it doesn't.
# Loopback unless told otherwise (a container sets 0.0.0.0 for Prometheus to reach it).
POKEWATCH_WORKER_METRICS_PORT = env_int("POKEWATCH_WORKER_METRICS_PORT", 0)
POKEWATCH_WORKER_METRICS_ADDR = env_str("POKEWATCH_WORKER_METRICS_ADDR", "127.0.0.1")
# Django's request latency histogram: finer than django-prometheus's default below 1 s,
# where the API lives (the p99 alert is at 250 ms).
PROMETHEUS_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"),
)  # fmt: skip

# --- Logging -------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# "plain" for people, "json" (one object per line: time, level, logger, request_id, message,
# and exception with its traceback when there is one) for log collectors.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "pokewatch_site.middleware.RequestIDLogFilter"},
    },
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            "rename_fields": {
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
                "exc_info": "exception",
            },
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler would print every line a second time via root.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "INFO"},
        # The ML libraries are chatty at INFO; their warnings and errors still come through.
        "zenml": {"level": "WARNING"},
        "mlflow": {"level": "WARNING"},
        "alembic": {"level": "WARNING"},
        "matplotlib": {"level": "WARNING"},
    },
}
