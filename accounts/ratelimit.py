"""Per-key rate limits with django-ratelimit, answered the way DRF answers throttling.

The counters live in the ``ratelimit`` cache (Redis DB 2 in production). Each endpoint
group ("read", "batch", "public") has a default rate in ``POKEWATCH_RATES``; a key's own
``rate`` overrides it. Over the limit: 429 with ``Retry-After``; otherwise limited
responses carry ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``. If the counters'
cache is unreachable, ``RATELIMIT_FAIL_OPEN`` (default on) lets requests through, logged.

:mod:`prices.fastpath` counts some requests itself, inside its one Redis round trip. It
counts in django-ratelimit's own counter (same key, window and expiry, see
:func:`counter_for`), and when it hands a request it has counted to the DRF view, it
leaves the result on the request (:func:`mark_counted`) so the request is not counted
twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django_ratelimit import ALL
from django_ratelimit.core import (  # the library's own key scheme, shared with fastpath
    EXPIRATION_FUDGE,
    _get_window,
    _make_cache_key,
    _split_rate,
    get_usage,
)
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import APIKey

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    if settings.POKEWATCH_TRUSTED_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return str(request.META.get("REMOTE_ADDR", "unknown"))


def key_client(prefix: str) -> str:
    """The rate-limit client of the API key with this prefix (see :func:`ratelimit_key`)."""
    return f"key:{prefix}"


def ratelimit_key(group: str, request: Request) -> str:
    key = getattr(request, "auth", None)
    if isinstance(key, APIKey):
        return key_client(key.prefix)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def rate_for(group: str, request: Request) -> str:
    key = getattr(request, "auth", None)
    if isinstance(key, APIKey) and key.rate:
        return str(key.rate)
    return str(settings.POKEWATCH_RATES[group])


@dataclass(frozen=True)
class Counter:
    """django-ratelimit's counter of one client in one endpoint group, this window."""

    key: str  # before the cache's own prefixing (``cache.make_key``)
    limit: int
    expiry: int  # seconds, as django-ratelimit sets it
    window: int  # when the window ends (epoch seconds)

    def usage(self, count: int) -> dict[str, Any]:
        """The dict :func:`django_ratelimit.core.get_usage` returns for ``count``."""
        return {
            "count": count,
            "limit": self.limit,
            "should_limit": count > self.limit,
            "time_left": self.window - int(time.time()),
        }


_counters: dict[tuple[str, str, str], Counter] = {}


def counter_for(group: str, value: str, rate: str) -> Counter:
    """The counter ``get_usage(group=group, key=…, rate=rate)`` would use for ``value``.

    Remembered until its window ends (django-ratelimit's window includes its last second).
    """
    memo_key = (group, value, rate)
    found = _counters.get(memo_key)
    if found is not None and int(time.time()) <= found.window:
        return found
    if len(_counters) >= 1024:
        _counters.clear()
    found = _counters[memo_key] = _new_counter(group, value, rate)
    return found


def _new_counter(group: str, value: str, rate: str) -> Counter:
    limit, period = _split_rate(rate)
    window = _get_window(value, period)
    return Counter(
        key=_make_cache_key(group, window, rate, value, ALL),
        limit=limit,
        expiry=period + EXPIRATION_FUDGE,
        window=window,
    )


def mark_counted(request: HttpRequest, group: str, rate: str, usage: dict[str, Any]) -> None:
    """Record that this request was counted already (by :mod:`prices.fastpath`)."""
    request.pokewatch_counted = (group, rate, usage)  # type: ignore[attr-defined]


def set_limit_headers(response: HttpResponseBase, usage: dict[str, Any] | None) -> None:
    if usage:
        response["X-RateLimit-Limit"] = str(usage["limit"])
        response["X-RateLimit-Remaining"] = str(max(usage["limit"] - usage["count"], 0))


class RateLimitedMixin:
    """For DRF views: count the request after authentication; 429 past the limit."""

    ratelimit_group = "read"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        usage = self._counted_already(request)
        if usage is None:
            usage = get_usage(
                request,
                group=self.ratelimit_group,
                key=ratelimit_key,
                rate=rate_for,
                increment=True,
            )
        request.ratelimit_usage = usage  # type: ignore[attr-defined]
        if usage is None:
            logger.warning("rate limiting unavailable (counter cache down): request let through")
            return
        if usage["should_limit"]:
            wait = max(int(usage["time_left"]), 1)
            # DRF adds "Expected available in N seconds." and the Retry-After header.
            raise Throttled(
                wait=wait, detail=f"Rate limit exceeded ({usage['limit']} requests per window)."
            )

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        set_limit_headers(response, getattr(request, "ratelimit_usage", None))
        return response

    def _counted_already(self, request: Request) -> dict[str, Any] | None:
        """The usage :mod:`prices.fastpath` counted for this request, if still the right one.

        Only if it was counted for this key, group and rate: a key whose rate changed
        meanwhile is counted again, against its new rate's counter.
        """
        counted = getattr(request._request, "pokewatch_counted", None)
        if counted is None or not isinstance(request.auth, APIKey):
            return None
        group, rate, usage = counted
        if group != self.ratelimit_group or rate != rate_for(group, request):
            return None
        return dict(usage)
