"""Settings for ``benchmarks.api``: the real settings, plus the benchmark's trivial views.

Everything comes from :mod:`pokewatch_site.settings` (so the benchmark measures the real
middleware, authentication, rate limiting and caching). Two changes only:

* ``ROOT_URLCONF`` adds ``/bench/…`` views (see :mod:`benchmarks.bench_urls`).
* The cache key prefix is ``POKEWATCH_BENCH_CACHE_PREFIX`` when set (``benchmarks.api``
  sets it for itself and for gunicorn). The benchmark publishes predictions, clears the
  prediction cache and reads its hit/miss counters; with its own prefix it does that in
  Redis DB 1/2 without touching, or being disturbed by, the entries, generation and
  counters of anything else using the same Redis (a dev server, the test suite).
"""

from __future__ import annotations

import copy
import os

from pokewatch_site.settings import *  # noqa: F403
from pokewatch_site.settings import CACHES as _BASE_CACHES

ROOT_URLCONF = "benchmarks.bench_urls"

_prefix = os.environ.get("POKEWATCH_BENCH_CACHE_PREFIX", "").strip()
if _prefix:
    CACHES = copy.deepcopy(_BASE_CACHES)
    for _alias in CACHES.values():
        _alias["KEY_PREFIX"] = _prefix
