"""Cached fair-price reads in one Redis round trip.

``GET /api/v1/cards/{id}/fair-price/`` is the API's hottest read. Through DRF, a cached
answer takes five Redis round trips: the key's cached row, the rate-limit counter (two),
the prediction entry and the hit counter. Each trip costs the worker a system call pair,
a thread switch and a wait for Redis, and together they are most of the request's cost
(docs/benchmarks.md). Every key involved is known from the request before the first of
them, so :func:`serve` sends them all at once, in one write:

1. ``MGET`` of the key's version token and cached row, the cache generation and the
   prediction entry (default cache, Redis DB 1);
2. ``SELECT`` the rate-limit DB (2), ``SET NX EX`` + ``INCR`` of django-ratelimit's own
   counter for this key and window (:func:`accounts.ratelimit.counter_for`), ``SELECT``
   back (the counters stay in their own DB; the connection leaves as it came);
3. ``INCR`` of the shared hit counter.

:class:`FastReadMiddleware` calls it before URL resolving and before the session, CSRF,
authentication and messages middleware, none of which a keyed JSON read uses (~0.04 ms
of CPU a request). It answers only the common case, and hands anything else to the rest
of the stack and the DRF view, unchanged:

* Redis is the default and the rate-limit cache, on one server; fast reads are on
  (``POKEWATCH_FAST_READS``); rate limiting is on;
* a ``GET`` asking for JSON (no ``format``, no ``Accept`` that would pick another
  renderer), with no query parameter but a valid ``date``;
* an API key this process has verified before (:func:`accounts.keys.verified_here`): a
  wrong secret never gets here, so it can't spend the key's budget;
* after the round trip: the key's cached row is current and the key still usable (a
  revoke replaces the version token: refused at once), the request is within its limit,
  and the prediction entry is of the current generation.

When the view takes over after the round trip, the request has been counted: the count
goes with it (:func:`accounts.ratelimit.mark_counted`), and the hit counted in advance is
taken back. The answer has the same body and headers the view would send (a test
compares both paths): the middleware before this one (request id, security headers, CORS,
``X-Frame-Options``) still runs, ``Host`` is checked against ``ALLOWED_HOSTS`` as
``CommonMiddleware`` would, and ``Content-Length`` is set as it would.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils.cache import patch_vary_headers
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from rest_framework.renderers import JSONRenderer

from accounts import keys, ratelimit
from accounts.authentication import APIKeyAuthentication
from prices import caching

logger = logging.getLogger(__name__)

BACKOFF_SECONDS = 5.0
IDLE_CHECK_SECONDS = 1.0
_DATE_QUERY = re.compile(r"date=(\d{4}-\d{2}-\d{2})")
# Media ranges for which DRF's negotiation picks JSON for everyone.
_JSON_RANGES = {"*/*", "application/*", "application/json"}
_renderer = JSONRenderer()
_key_parser = APIKeyAuthentication.key_parser
MAX_BODIES = 10_000
_state: dict[str, Any] = {"route": None, "planned": False, "down_until": 0.0}
_bodies: dict[bytes, tuple[Any, bytes]] = {}
_local = threading.local()


# The DRF view's default response headers for this action (the test comparing both
# paths keeps them in step).
VIEW_HEADERS = {"Allow": "GET, HEAD, OPTIONS", "Vary": "Accept"}


class FastReadMiddleware:
    """Serve cached fair prices with :func:`serve`; pass every other request on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        from prices.views import CardViewSet

        self.get_response = get_response
        self.group = CardViewSet.ratelimit_group

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        card_id = _fair_price_card(request.path_info)
        if card_id is not None:
            request.get_host()  # DisallowedHost (400) for a Host not in ALLOWED_HOSTS
            response = serve(request, card_id, self.group, VIEW_HEADERS)
            if response is not None:
                return response
        return self.get_response(request)


@dataclass(frozen=True)
class _Route:
    client: Any  # redis.Redis of the default cache (its pool's connection settings)
    cache_db: int
    ratelimit_db: int
    cache_key: Callable[[str], str]
    counter_key: Callable[[str], str]
    decode: Callable[[bytes], Any]


def serve(
    request: HttpRequest, card_id: str, group: str, headers: Mapping[str, str]
) -> HttpResponse | None:
    """The fair-price response from the cache, or ``None``: let the DRF view answer.

    ``group`` is the view's rate-limit group; ``headers`` are its default response
    headers (``Allow``, ``Vary``).
    """
    route = _route()
    if route is None or request.method != "GET" or not _wants_json(request):
        return None
    day = _day(request.META.get("QUERY_STRING", ""))
    raw_key = _key_parser.get(request) if day is not None else None
    known = keys.verified_here(raw_key) if raw_key else None
    if known is None:
        return None
    prefix, verified = known
    rate = verified.rate or str(settings.POKEWATCH_RATES[group])
    counter = ratelimit.counter_for(group, ratelimit.key_client(prefix), rate)
    entry_key, version_key = keys.cache_keys(prefix)
    prediction_key = caching.fair_price_key(card_id, day or None)

    found = _round_trip(route, [version_key, entry_key, prediction_key], counter)
    if found is None:
        return None
    version, entry, generation, prediction, count = found
    usage = counter.usage(count)
    key = keys.usable_cached_key(version, entry, verified, route.decode)
    body = _current_body(prediction, generation, route.decode)
    if key is None or body is None or usage["should_limit"]:
        # The view answers (401, 429, a miss from the database): with this count, and
        # without the hit counted in advance.
        ratelimit.mark_counted(request, group, rate, usage)
        caching.uncount_hit()
        return None
    keys.touch_last_used(key)
    response = HttpResponse(body, content_type=_renderer.media_type)
    for name, header in headers.items():
        response[name] = header
    # The view's negotiation reads the session (staff may get the browsable API), so its
    # answers vary by cookie; say the same here.
    patch_vary_headers(response, ("Cookie",))
    ratelimit.set_limit_headers(response, usage)
    response["Content-Length"] = str(len(body))
    return response


def reset() -> None:
    """Forget the route and any back-off (settings changed, or between tests)."""
    _state.update(route=None, planned=False, down_until=0.0)
    _bodies.clear()
    _paths.clear()


_paths: dict[str, re.Pattern[str] | None] = {}


def _fair_price_card(path_info: str) -> str | None:
    """The card id if ``path_info`` is the fair-price URL of a card, else ``None``.

    The pattern comes from the URL conf itself (``reverse`` of the route), with the
    viewset's own ``lookup_value_regex``: the URL is defined in one place only. A URL conf
    without the route (some tests use their own) has no fast reads.
    """
    prefix = get_script_prefix()
    if prefix not in _paths:
        _paths[prefix] = _fair_price_pattern(prefix)
    pattern = _paths[prefix]
    match = pattern.fullmatch(path_info) if pattern else None
    return match[1] if match else None


def _fair_price_pattern(prefix: str) -> re.Pattern[str] | None:
    from prices.views import CardViewSet

    marker = "CARDID"
    try:
        url = reverse("card-fair-price", kwargs={"card_id": marker})
    except NoReverseMatch:
        return None
    before, after = url[len(prefix) - 1 :].split(marker)
    return re.compile(f"{re.escape(before)}({CardViewSet.lookup_value_regex}){re.escape(after)}")


def _round_trip(
    route: _Route, cache_keys: list[str], counter: ratelimit.Counter
) -> tuple[Any, ...] | None:
    """Version, entry, generation, prediction (raw bytes or ``None``) and the new count.

    Sent as one write on this thread's own connection to the default cache's DB and read
    back in order: no pool checkout with its readiness probe on every request, no
    ``Pipeline`` bookkeeping (together ~50 µs of CPU per request). Any failure closes the
    connection, so a half-read reply, or a connection left on the counters' DB, is never
    reused.
    """
    if time.monotonic() < _state["down_until"]:
        return None
    counter_key = route.counter_key(counter.key)
    commands = [
        ("MGET", *(route.cache_key(k) for k in (*cache_keys, caching.GENERATION_KEY))),
        ("SELECT", route.ratelimit_db),
        ("SET", counter_key, 0, "EX", counter.expiry, "NX"),
        ("INCR", counter_key),
        ("SELECT", route.cache_db),
        ("INCR", route.cache_key(caching.HITS_KEY)),
    ]
    connection = _connection(route)
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        replies = [connection.read_response() for _ in commands]
    except RedisError:
        # Unreachable or misbehaving: the view's path fails open or falls back to the
        # database on its own; don't retry here for a few seconds.
        logger.warning("fast reads: Redis round trip failed; using the view", exc_info=True)
        _state["down_until"] = time.monotonic() + BACKOFF_SECONDS
        connection.disconnect()
        return None
    except BaseException:
        connection.disconnect()
        raise
    (version, entry, prediction, generation), _, _, count, _, _ = replies
    return version, entry, generation, prediction, int(count)


def _connection(route: _Route) -> Any:
    """This thread's connection for ``route`` (connected lazily, on the cache's DB).

    After a pause, checked the way redis-py's pool checks a connection it hands out: one
    that the server (or a proxy) closed meanwhile, or that has data waiting, is replaced.
    """
    now = time.monotonic()
    if getattr(_local, "route", None) is not route:
        pool = route.client.connection_pool
        _local.connection = pool.connection_class(**pool.connection_kwargs)
        _local.route = route
    elif now - _local.used > IDLE_CHECK_SECONDS:
        try:
            if _local.connection.can_read():
                raise RedisConnectionError("unexpected data on an idle connection")
        except (RedisConnectionError, OSError):
            _local.connection.disconnect()  # the next command connects afresh
    _local.used = now
    return _local.connection


def _current_body(
    prediction: bytes | None, generation: bytes | None, decode: Callable[[bytes], Any]
) -> bytes | None:
    """The JSON body of a prediction entry of the current generation, else ``None``.

    Rendered bodies are remembered by the entry's stored bytes (which hold its
    generation), so an entry is decoded and rendered once per process, not per request.
    """
    if prediction is None or generation is None:
        return None
    found = _bodies.get(prediction)
    if found is None:
        stored_generation, value = decode(prediction)
        if len(_bodies) >= MAX_BODIES:
            _bodies.clear()
        found = _bodies[prediction] = (stored_generation, _renderer.render(value))
    stored_generation, body = found
    return body if stored_generation == decode(generation) else None


def _wants_json(request: HttpRequest) -> bool:
    accept = request.META.get("HTTP_ACCEPT")
    if not accept:
        return True
    return all(part.split(";", 1)[0].strip() in _JSON_RANGES for part in accept.split(","))


def _day(query: str) -> str | None:
    """``""`` for no query, the ISO date of a lone valid ``date=``, else ``None``."""
    if not query:
        return ""
    match = _DATE_QUERY.fullmatch(query)
    if match is None:
        return None
    try:
        return date.fromisoformat(match[1]).isoformat()
    except ValueError:
        return None


def _route() -> _Route | None:
    if not _state["planned"]:
        default, counters = caches["default"], caches[settings.RATELIMIT_USE_CACHE]
        _state.update(route=_plan(default, counters), planned=True)
    return _state["route"]  # type: ignore[no-any-return]


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CACHES", "POKEWATCH_FAST_READS", "ROOT_URLCONF"} or setting.startswith(
        "RATELIMIT_"
    ):
        reset()


def _plan(default: Any, counters: Any) -> _Route | None:
    """A route if fast reads are on and both caches are django-redis on the same Redis
    server, else ``None``. Worked out once per process (again if the settings change).
    """
    if not settings.POKEWATCH_FAST_READS or not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    try:
        client = default.client.get_client(write=True)
        counters_client = counters.client.get_client(write=True)
    except AttributeError:  # not django-redis
        return None
    cache_kwargs = dict(client.connection_pool.connection_kwargs)
    counter_kwargs = dict(counters_client.connection_pool.connection_kwargs)
    cache_db, ratelimit_db = cache_kwargs.pop("db", 0), counter_kwargs.pop("db", 0)
    same_server = (
        cache_kwargs == counter_kwargs
        and client.connection_pool.connection_class
        is counters_client.connection_pool.connection_class
    )
    if not same_server:
        return None
    return _Route(
        client=client,
        cache_db=int(cache_db),
        ratelimit_db=int(ratelimit_db),
        cache_key=default.make_key,
        counter_key=counters.make_key,
        decode=default.client.decode,
    )
