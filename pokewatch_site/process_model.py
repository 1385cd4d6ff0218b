"""One process model: how many web workers run, and whether they may count alone.

Rate-limit counters (and the cache) are shared by every process only with ``REDIS_URL``;
without it each process keeps its own, so N workers would let a ``5/m`` key through
N x 5 times a minute. Both the gunicorn configuration (``config/gunicorn.conf.py``, which
starts the workers) and the settings (which pick the counter store) ask this module, so
they cannot disagree: the default is 4 workers with ``REDIS_URL`` and 1 without, and more
than one worker without it refuses to start.

Only the environment is read here (no Django settings): gunicorn's master asks before any
application code is loaded.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

#: Web workers when the counters are shared (the best measured on 2 cores,
#: docs/benchmarks.md); one process when they are not.
SHARED_DEFAULT_WORKERS = 4


def counters_shared() -> bool:
    """Whether every process counts in the same store (Redis, named by ``REDIS_URL``)."""
    return bool(os.environ.get("REDIS_URL", "").strip())


def default_workers() -> int:
    """``WEB_CONCURRENCY`` if set, else 4 with shared counters and 1 without."""
    raw = os.environ.get("WEB_CONCURRENCY", "").strip()
    if not raw:
        return SHARED_DEFAULT_WORKERS if counters_shared() else 1
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"WEB_CONCURRENCY must be an integer, got {raw!r}") from None


def check_workers(workers: int) -> None:
    """Refuse several web workers on a per-process counter store."""
    if workers > 1 and not counters_shared():
        raise ImproperlyConfigured(
            f"{workers} web workers without REDIS_URL: each worker would keep its own "
            "cache and rate-limit counters (a 5/m key would get 5 a minute per worker). "
            "Set REDIS_URL, or run one worker (WEB_CONCURRENCY=1)."
        )
