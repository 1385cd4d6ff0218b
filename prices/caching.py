"""The prediction cache: key builders, TTL, generation, statistics and clearing.

Reads go cache → database. Every entry carries the *generation*, a number bumped in the
same transaction that publishes a champion or scores new days, so a publish makes all older
entries unreachable at once, with no scan. The generation lives in the database (the
truth every process shares) and is mirrored into a shared cache (Redis) after commit, so
with Redis a new generation is seen instantly; with the per-process local-memory cache
each process re-reads it from the database at most every ``GENERATION_POLL_SECONDS``.

An entry is ``(generation, value, etag)``: the ETag (a digest of the value's JSON) is
worked out once, when the value is cached, and lets a view answer a conditional GET with
304 without rendering anything.

A keyed request's entries usually come from :mod:`pokewatch_site.caching`'s per-request
store: the API key authentication fetched them in the same ``MGET`` as the key's cached
row (the view names them in ``prefetch_cache_keys``). Hits and misses are counted per
process and added to shared counters in the cache a second later
(``COUNT_FLUSH_SECONDS``, by a timer thread), so with Redis the statistics cover every
worker, at most a second late, without a round trip per request. If the cache is down,
reads fall back to the database (django-redis's IGNORE_EXCEPTIONS turns failures into
misses).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from rest_framework.renderers import JSONRenderer

from pokewatch_site import caching as site_caching
from pokewatch_site.errors import NotFound
from pokewatch_site.metrics import PREDICTION_CACHE_HITS, PREDICTION_CACHE_MISSES
from prices.models import CacheGeneration

logger = logging.getLogger(__name__)
T = TypeVar("T")

PREFIX = "pred"
GENERATION_KEY = "pred-meta:generation"
HITS_KEY = "pred-meta:hits"
MISSES_KEY = "pred-meta:misses"
GENERATION_POLL_SECONDS = 2.0
GENERATION_MIRROR_TTL = 60
COUNT_FLUSH_SECONDS = 1.0
# How long other processes may serve older predictions after a publish whose generation
# could not be mirrored to the shared cache (logged as a warning).
STALE_BOUND = GENERATION_MIRROR_TTL + int(GENERATION_POLL_SECONDS)
# A NotFound (unknown card, no prediction) is cached too, for at most this long: a batch of
# unknown ids would otherwise query the database for each of them on every request.
MISSING_TTL = 60
_generation = site_caching.memo("prediction-cache:generation")
_counts = site_caching.memo("prediction-cache:counts")
_counts_lock = threading.Lock()
_renderer = JSONRenderer()


def is_shared() -> bool:
    return site_caching.is_shared()


def _db_generation() -> int:
    row = CacheGeneration.objects.filter(pk=1).values_list("value", flat=True).first()
    return int(row or 0)


def current_generation() -> int:
    if is_shared():
        value = cache.get(GENERATION_KEY)
        if value is not None:
            return int(value)
    now = time.monotonic()
    cached = _generation.get("generation")
    if cached and now - cached[0] < GENERATION_POLL_SECONDS:
        return int(cached[1])
    value = _db_generation()
    _generation["generation"] = (now, value)
    if is_shared():
        # add, not set: a reader that read the database just before a publish committed
        # must not overwrite the new generation the publisher has just mirrored.
        cache.add(GENERATION_KEY, value, timeout=GENERATION_MIRROR_TTL)
    return value


def bump_generation() -> int:
    """Make every cached prediction unreachable (call inside the publishing transaction)."""
    CacheGeneration.objects.get_or_create(pk=1)
    CacheGeneration.objects.filter(pk=1).update(value=F("value") + 1)
    value = _db_generation()
    _generation.pop("generation", None)
    if is_shared():
        transaction.on_commit(lambda: _mirror_generation(value))
    return value


def _mirror_generation(value: int) -> None:
    """Write the new generation to the shared cache; say so if it could not be written.

    Other processes then keep the mirrored older generation until it expires: every write
    of the mirror has GENERATION_MIRROR_TTL, so they see the new one within
    ``STALE_BOUND`` seconds of the commit (a reader's memo adds GENERATION_POLL_SECONDS).
    """
    cache.set(GENERATION_KEY, value, timeout=GENERATION_MIRROR_TTL)
    mirrored = cache.get(GENERATION_KEY)  # read back: django-redis ignores a failed write
    if mirrored is None or int(mirrored) < value:
        logger.warning(
            "prediction cache: generation %s could not be written to the shared cache; "
            "other processes may serve the previous predictions for up to %d s",
            value,
            STALE_BOUND,
        )


def key(*parts: object) -> str:
    return ":".join([PREFIX, *(str(p) for p in parts)])


def fair_price_parts(card_id: str, day: str | None) -> tuple[str, str, str]:
    """The entry of one card's fair price on ``day`` (ISO date; ``None``: the latest)."""
    return ("fair", card_id, day or "latest")


def fair_price_key(card_id: str, day: str | None) -> str:
    return key(*fair_price_parts(card_id, day))


def prefetch_keys(parts: tuple[object, ...]) -> list[str]:
    """The cache keys a read of ``parts`` needs: for a view's ``prefetch_cache_keys``."""
    return [GENERATION_KEY, key(*parts)] if is_shared() else [key(*parts)]


def read_through(parts: tuple[object, ...], compute: Callable[[], T], request: Any = None) -> T:
    """The cached value for ``parts``, or ``compute()`` stored for the TTL."""
    return read_entry(parts, compute, request)[0]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Missing:
    """What the cache keeps of a :class:`NotFound` that ``compute()`` raised: its detail."""

    detail: str


def prefetch(request: Any, parts_list: list[tuple[object, ...]]) -> None:
    """Fetch the entries of ``parts_list`` (and the generation) in one round trip (MGET)
    and keep them on ``request``, for the :func:`read_entry` calls that follow."""
    cache_keys = list(dict.fromkeys(key(*parts) for parts in parts_list))
    if is_shared():
        cache_keys.insert(0, GENERATION_KEY)
    site_caching.keep(request, cache_keys, cache.get_many(cache_keys))


def read_entry(
    parts: tuple[object, ...], compute: Callable[[], Any], request: Any = None
) -> tuple[Any, str]:
    """``(value, etag)`` for ``parts`` from the cache, else ``compute()`` cached.

    Entries of an older generation are misses. With a shared cache the generation and the
    entry come back in one round trip (MGET), or none if ``request`` fetched them already.
    A :class:`NotFound` from ``compute()`` is cached too (for :data:`MISSING_TTL` at
    most) and raised again by the reads that find it.
    """
    cache_key = key(*parts)
    if is_shared():
        found = _fetch(request, [GENERATION_KEY, cache_key])
        mirrored = found.get(GENERATION_KEY)
        generation = int(mirrored) if mirrored is not None else current_generation()
        entry = found.get(cache_key)
    else:
        generation = current_generation()
        entry = _fetch(request, [cache_key]).get(cache_key)
    if isinstance(entry, tuple) and len(entry) == 3 and entry[0] == generation:
        _count("hits")
        if isinstance(entry[1], Missing):
            raise NotFound(entry[1].detail)
        return entry[1], entry[2]
    _count("misses")
    ttl = settings.POKEWATCH_PREDICTION_CACHE_TTL
    try:
        value = compute()
    except NotFound as exc:
        _store(request, cache_key, (generation, Missing(exc.detail), ""), min(ttl, MISSING_TTL))
        raise
    etag = _etag(value)
    _store(request, cache_key, (generation, value, etag), ttl)
    return value, etag


def _store(request: Any, cache_key: str, entry: tuple[int, Any, str], ttl: int) -> None:
    cache.set(cache_key, entry, timeout=ttl)
    if request is not None:
        site_caching.keep(request, [cache_key], {cache_key: entry})


def _fetch(request: Any, cache_keys: list[str]) -> dict[str, Any]:
    """The cached values of ``cache_keys``: from what ``request`` fetched, else the cache."""
    found: dict[str, Any] = {}
    missing = []
    for cache_key in cache_keys:
        known = site_caching.kept(request, cache_key) if request is not None else None
        if known is None:
            missing.append(cache_key)
        elif known[0]:
            found[cache_key] = known[1]
    if missing:
        found.update(cache.get_many(missing))
    return found


def _etag(value: Any) -> str:
    """A strong ETag of ``value`` as the API renders it."""
    return '"' + hashlib.blake2b(_renderer.render(value), digest_size=16).hexdigest() + '"'


def _count(counter: str) -> None:
    """Count a hit or a miss here; a timer adds them to the shared counters a second later.

    Prometheus's counters (pokewatch_site.metrics) are counted at once: they are this
    process's own (files in multiprocess mode), no round trip.
    """
    (PREDICTION_CACHE_HITS if counter == "hits" else PREDICTION_CACHE_MISSES).inc()
    with _counts_lock:
        _counts[counter] = _counts.get(counter, 0) + 1
        if _counts.get("timer") is not None:
            return
        timer = _counts["timer"] = threading.Timer(COUNT_FLUSH_SECONDS, flush_counts)
    timer.daemon = True
    timer.start()


def flush_counts() -> None:
    """Add this process's pending hit and miss counts to the cache's counters."""
    with _counts_lock:
        pending = {name: _counts.pop(name, 0) for name in ("hits", "misses")}
        timer = _counts.pop("timer", None)
    if timer is not None:
        timer.cancel()  # called early (stats, clear): the timer has nothing left to do
    for name, cache_key in (("hits", HITS_KEY), ("misses", MISSES_KEY)):
        if pending[name]:
            _add(cache_key, pending[name])


def _add(cache_key: str, delta: int) -> None:
    try:
        cache.incr(cache_key, delta)
    except ValueError:  # first count since the counters were reset
        cache.add(cache_key, 0, timeout=None)
        with contextlib.suppress(ValueError):
            cache.incr(cache_key, delta)


@dataclass
class CacheStats:
    backend: str
    hits: int
    misses: int
    hit_rate: float | None
    entries: int | None
    generation: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stats() -> CacheStats:
    flush_counts()
    hits = int(cache.get(HITS_KEY) or 0)
    misses = int(cache.get(MISSES_KEY) or 0)
    total = hits + misses
    return CacheStats(
        backend=str(settings.CACHES["default"]["BACKEND"]).rsplit(".", 1)[-1],
        hits=hits,
        misses=misses,
        hit_rate=round(hits / total, 4) if total else None,
        entries=_entries(),
        generation=current_generation(),
    )


def _entries() -> int | None:
    """Prediction entries in the cache (None if the backend can't tell).

    Entries of an older generation are unreachable and expire with their TTL (or are
    overwritten by the first read of the same key).
    """
    pattern = f"{PREFIX}:*"
    if hasattr(cache, "iter_keys"):  # django-redis
        try:
            keys = cache.iter_keys(pattern)  # type: ignore[attr-defined]
            return len(list(keys))
        except Exception:
            logger.warning("cache stats: could not count entries", exc_info=True)
            return None
    store = getattr(cache, "_cache", None)
    if store is None:
        return None
    marker = f":{PREFIX}:"
    return sum(1 for k in list(store) if marker in k)


def clear() -> CacheStats:
    """Drop every cached prediction (a new generation) and reset the counters."""
    with transaction.atomic():
        bump_generation()
    if hasattr(cache, "delete_pattern"):  # django-redis
        try:
            cache.delete_pattern(f"{PREFIX}:*")  # type: ignore[attr-defined]
        except Exception:
            logger.warning("cache clear: could not delete old entries", exc_info=True)
    else:  # local memory: its store is a dict; other backends' entries just go stale
        store = getattr(cache, "_cache", {})
        marker = f":{PREFIX}:"
        # Stored keys are "<key prefix>:<version>:<key>"; delete by the key we made.
        cache.delete_many([k.split(":", 2)[2] for k in list(store) if marker in k])
    flush_counts()  # this process's pending counts are of the old entries too
    cache.delete_many([HITS_KEY, MISSES_KEY])
    return stats()
