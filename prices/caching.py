"""The prediction cache: key builders, TTL, generation, statistics and clearing.

Reads go cache → database. Every entry carries the *generation*, a number bumped in the
same transaction that publishes a champion or scores new days, so a publish makes all older
entries unreachable at once, with no scan. The generation lives in the database (the
truth every process shares) and is mirrored into a shared cache (Redis) after commit, so
with Redis a new generation is seen instantly; with the per-process local-memory cache
each process re-reads it from the database at most every ``GENERATION_POLL_SECONDS``.

Hits and misses are counted in the cache itself, so with Redis every worker sees the
same numbers. If the cache is down, reads fall back to the database (django-redis's
IGNORE_EXCEPTIONS turns failures into misses).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F

from prices.models import CacheGeneration

logger = logging.getLogger(__name__)
T = TypeVar("T")

PREFIX = "pred"
GENERATION_KEY = "pred-meta:generation"
HITS_KEY = "pred-meta:hits"
MISSES_KEY = "pred-meta:misses"
GENERATION_POLL_SECONDS = 2.0
GENERATION_MIRROR_TTL = 60
_memo: dict[str, tuple[float, int]] = {}


def is_shared() -> bool:
    return "redis" in str(settings.CACHES["default"]["BACKEND"]).lower()


def _db_generation() -> int:
    row = CacheGeneration.objects.filter(pk=1).values_list("value", flat=True).first()
    return int(row or 0)


def current_generation() -> int:
    if is_shared():
        value = cache.get(GENERATION_KEY)
        if value is not None:
            return int(value)
    now = time.monotonic()
    cached = _memo.get("generation")
    if cached and now - cached[0] < GENERATION_POLL_SECONDS:
        return cached[1]
    value = _db_generation()
    _memo["generation"] = (now, value)
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
    _memo.pop("generation", None)
    if is_shared():
        transaction.on_commit(
            lambda: cache.set(GENERATION_KEY, value, timeout=GENERATION_MIRROR_TTL)
        )
    return value


def key(*parts: object) -> str:
    return ":".join([PREFIX, *(str(p) for p in parts)])


def fair_price_parts(card_id: str, day: str | None) -> tuple[str, str, str]:
    """The entry of one card's fair price on ``day`` (ISO date; ``None``: the latest)."""
    return ("fair", card_id, day or "latest")


def fair_price_key(card_id: str, day: str | None) -> str:
    return key(*fair_price_parts(card_id, day))


def read_through(parts: tuple[object, ...], compute: Callable[[], T]) -> T:
    """The cached value for ``parts``, or ``compute()`` stored for the TTL.

    Entries are stored as ``(generation, value)``; one of an older generation is a miss.
    With Redis the generation and the entry come back in one round trip (MGET).
    """
    cache_key = key(*parts)
    if is_shared():
        found = cache.get_many([GENERATION_KEY, cache_key])
        mirrored = found.get(GENERATION_KEY)
        generation = int(mirrored) if mirrored is not None else current_generation()
        entry = found.get(cache_key)
    else:
        generation = current_generation()
        entry = cache.get(cache_key)
    if entry is not None and entry[0] == generation:
        _count(HITS_KEY)
        return entry[1]  # type: ignore[no-any-return]
    _count(MISSES_KEY)
    value = compute()
    cache.set(cache_key, (generation, value), timeout=settings.POKEWATCH_PREDICTION_CACHE_TTL)
    return value


def uncount_hit() -> None:
    """Take back a hit counted in advance (:mod:`prices.fastpath`) that did not happen."""
    with contextlib.suppress(ValueError):
        cache.decr(HITS_KEY)


def _count(counter: str) -> None:
    try:
        cache.incr(counter)
    except ValueError:  # first count since the counters were reset
        cache.add(counter, 0, timeout=None)
        with contextlib.suppress(ValueError):
            cache.incr(counter)


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
    if is_shared():
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
    if is_shared():
        try:
            cache.delete_pattern(f"{PREFIX}:*")  # type: ignore[attr-defined]
        except Exception:
            logger.warning("cache clear: could not delete old entries", exc_info=True)
    else:
        store = getattr(cache, "_cache", {})
        marker = f":{PREFIX}:"
        # Stored keys are "<key prefix>:<version>:<key>"; delete by the key we made.
        cache.delete_many([k.split(":", 2)[2] for k in list(store) if marker in k])
    cache.delete_many([HITS_KEY, MISSES_KEY])
    return stats()
