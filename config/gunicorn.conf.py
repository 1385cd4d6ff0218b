"""Gunicorn settings for the PokeWatch web process (the container's default command).

Every value can be overridden from the environment; the defaults are the configuration
measured best on 2 cores in docs/benchmarks.md (4 gthread workers x 2 threads) when
``REDIS_URL`` is set, and one worker without it: several workers need shared rate-limit
counters, so gunicorn refuses to start them without (pokewatch_site.process_model).
"""

from __future__ import annotations

import os
import tempfile as _tempfile

# --- Metrics -------------------------------------------------------------------------------
# prometheus-client's multiprocess mode: every worker writes its counters to files in this
# directory and /metrics adds them up. Decided here, before any worker imports the client
# (the mode is fixed at import); a fresh directory unless PROMETHEUS_MULTIPROC_DIR names one
# (emptied at start: on_starting). Give the web and the Celery worker different ones.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _tempfile.mkdtemp(prefix="pokewatch-web-metrics-")

from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

from pokewatch_site import metrics_server as _metrics_server
from pokewatch_site import process_model as _process_model


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


# --- Socket --------------------------------------------------------------------------------
bind = f"0.0.0.0:{_int('PORT', 8000)}"
backlog = 2048

# --- Workers -------------------------------------------------------------------------------
# WEB_CONCURRENCY, else 4 with REDIS_URL and 1 without (the settings assume the same).
try:
    workers = _process_model.default_workers()
except _ImproperlyConfigured as exc:
    raise SystemExit(str(exc)) from None
worker_class = "pokewatch_site.gunicorn_worker.BalancedThreadWorker"
threads = _int("GUNICORN_THREADS", 2)
# Heartbeat files on tmpfs: a container's overlay filesystem can stall workers' heartbeats.
worker_tmp_dir = "/dev/shm"  # noqa: S108  (shared memory, not a temp file)

# --- Timeouts ------------------------------------------------------------------------------
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then so a slow leak never grows unbounded; jitter keeps them
# from restarting all at once. A worker serves up to ~1,000 requests a second and each
# restart costs ~1.5 s of CPU (imports, URL conf): at most every ~15 minutes at full load.
max_requests = _int("GUNICORN_MAX_REQUESTS", 1_000_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 50_000)


def on_starting(server: object) -> None:
    """Refuse several workers on per-process counters, however the count was given
    (``WEB_CONCURRENCY``, ``--workers`` or ``GUNICORN_CMD_ARGS``), whatever ``DEBUG`` says."""
    try:
        _process_model.check_workers(server.cfg.workers)  # type: ignore[attr-defined]
    except _ImproperlyConfigured as exc:
        raise SystemExit(f"Error: {exc}") from None
    _metrics_server.clear_multiprocess_dir()


def child_exit(server: object, worker: object) -> None:
    """A worker that exited (recycled, killed) leaves its counters counted, its gauges not."""
    _metrics_server.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def post_worker_init(worker: object) -> None:
    """Load every view now, then hide the loaded code from the garbage collector.

    Django imports the URL conf (DRF, drf-spectacular, every view) on the first request;
    doing it here keeps that second out of a client's request. ``gc.freeze()`` then moves
    the ~100k objects the worker holds for its whole life out of the collector's sight:
    each full collection scanned all of them (~45 ms, stalling every thread of the worker)
    and was the largest part of the API's p99 latency (docs/benchmarks.md).
    """
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports the URL conf and every view)
    gc.collect()
    gc.freeze()


# --- Proxy ---------------------------------------------------------------------------------
# Addresses whose X-Forwarded-Proto (and friends) gunicorn trusts to set wsgi.url_scheme.
# Gunicorn's own default: only the local host. Set to the reverse proxy's address (or "*"
# on a private network where only the proxy can reach this port).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# --- Logging: everything to stdout/stderr for the container runtime ----------------------
# "-": stdout. Empty: no access log (e.g. when the reverse proxy logs every request).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The default combined format plus the request id the app sends back (X-Request-ID, set by
# pokewatch_site.middleware.RequestIDMiddleware, so access lines match app log lines), the
# forwarded client address and the duration in milliseconds.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
    'request_id=%({x-request-id}o)s forwarded_for="%({x-forwarded-for}i)s" duration_ms=%(M)s'
)

proc_name = "pokewatch-web"
