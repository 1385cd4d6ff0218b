"""What every app needs to know about Django's cache: is it shared, and what each process
remembers beside it.

* :func:`is_shared`: the one answer to "does every process see the same default cache?"
  (Redis, Memcached, the database or files: yes; local memory or the dummy cache: no).
  Whether a cached key lookup, a mirrored generation or a counter can be trusted across
  processes depends on it.
* :func:`memo`: the process-level memo dicts (what a worker keeps between requests to
  skip a round trip: when it last touched a key, the generation it last read). They are
  all registered here, so :func:`clear_memos` forgets them all at once (settings
  changed, or between tests).
* :func:`keep` / :func:`kept`: values one request has already fetched. The API key
  authentication reads the key's cached row and, in the same ``get_many`` (one ``MGET``
  on Redis), whatever cache entries the view will read (:func:`prefetch_keys`); the view
  then finds them here instead of asking the cache again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest

UNSHARED_BACKENDS = frozenset(
    {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
)
_KEPT_ATTRIBUTE = "_pokewatch_cache_kept"
_memos: dict[str, dict[Any, Any]] = {}


def memo(name: str) -> dict[Any, Any]:
    """The process-level memo dict called ``name`` (created empty on first use)."""
    return _memos.setdefault(name, {})


_shared = memo("cache:shared")


def is_shared(alias: str = "default") -> bool:
    """Whether every process sees the same ``alias`` cache (so invalidation reaches them).

    Asked several times a request; the answer changes only with the settings.
    """
    found = _shared.get(alias)
    if found is None:
        found = _shared[alias] = settings.CACHES[alias]["BACKEND"] not in UNSHARED_BACKENDS
    return bool(found)


def clear_memos() -> None:
    """Forget everything every memo holds (their dicts stay the same objects)."""
    for found in _memos.values():
        found.clear()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES" or setting.startswith("POKEWATCH_"):
        clear_memos()


# --- values a request has fetched already ----------------------------------------------


def prefetch_keys(request: Any) -> list[str]:
    """The cache keys the view handling ``request`` says it will read (may be none).

    ``request`` is DRF's; its view (``parser_context["view"]``) may define
    ``prefetch_cache_keys(request) -> list[str]``.
    """
    context = getattr(request, "parser_context", None) or {}
    view = context.get("view")
    hook = getattr(view, "prefetch_cache_keys", None)
    return list(hook(request)) if hook is not None else []


def keep(request: Any, asked: Iterable[str], found: Mapping[str, Any]) -> None:
    """Remember the result of fetching ``asked`` for this request (absent: not cached)."""
    http_request = _http_request(request)
    kept = getattr(http_request, _KEPT_ATTRIBUTE, None)
    if kept is None:
        kept = {}
        setattr(http_request, _KEPT_ATTRIBUTE, kept)
    for cache_key in asked:
        kept[cache_key] = (cache_key in found, found.get(cache_key))


def kept(request: Any, cache_key: str) -> tuple[bool, Any] | None:
    """``(found, value)`` if this request fetched ``cache_key`` already, else ``None``."""
    found = getattr(_http_request(request), _KEPT_ATTRIBUTE, None)
    return found.get(cache_key) if found else None


def _http_request(request: Any) -> HttpRequest:
    # Kept on Django's request, which DRF's Request wraps: the same for both.
    return getattr(request, "_request", request)  # type: ignore[no-any-return]
