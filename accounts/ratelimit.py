"""Per-key rate limits: a DRF throttle class on django-ratelimit's public API.

:class:`RateLimitThrottle` is in ``DEFAULT_THROTTLE_CLASSES``, so every DRF view is
limited without having to remember anything. A view names its endpoint group with DRF's
``throttle_scope`` ("read", "batch"; "public" if it names none). The group's default
rate is ``POKEWATCH_RATES[group]`` (also DRF's ``DEFAULT_THROTTLE_RATES``); an API key's
own ``rate``, set in the admin or with ``apikey create --rate``, overrides it, except in
the :data:`CAPPED_GROUPS` ("batch"), where the request is counted against both the key's
rate and the group's default and refused past either. A request
with a key is counted per key, a staff session per user, anything else per client IP.

The counting is django-ratelimit's :func:`~django_ratelimit.core.get_usage`, on the
``ratelimit`` cache (Redis DB 2 in production). If that cache is unreachable,
``RATELIMIT_FAIL_OPEN`` (default on) lets requests through, logged; a view with
``ratelimit_fail_open = True`` (``health/``) lets them through even when it is off.

Past the limit DRF answers 429 (its ``Throttled``, worded by the site's exception
handler). :class:`RateLimitHeadersMiddleware` is the one place that puts the outcome on
the response: ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and, on a 429,
``Retry-After``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django_ratelimit.core import get_usage
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import APIKey
from pokewatch_site import outages
from pokewatch_site.metrics import RATELIMIT_REFUSALS

DEFAULT_GROUP = "public"
# Groups whose default rate also binds a key with its own rate (docs/api.md, "Rate limits"):
# a batch costs up to 100 reads, so a 100/m key must not get 100 batches a minute.
CAPPED_GROUPS = frozenset({"batch"})
_USAGE_ATTRIBUTE = "pokewatch_ratelimit_usage"


def client_ip(request: HttpRequest) -> str:
    """The client's address, behind ``POKEWATCH_TRUSTED_PROXY_HOPS`` reverse proxies.

    Each proxy appends the address it got the request from to ``X-Forwarded-For``, so
    with N trusted proxies the Nth entry from the right is the address the outermost one
    saw; entries left of it are whatever the client sent, and are ignored. Fewer entries
    than hops: every entry was written by a trusted proxy, so the leftmost. No proxy
    trusted (0), no header, or not an address there: ``REMOTE_ADDR``.
    """
    remote = str(request.META.get("REMOTE_ADDR", "unknown"))
    hops = settings.POKEWATCH_TRUSTED_PROXY_HOPS
    if not hops:
        return remote
    header = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    entries = [entry.strip() for entry in header.split(",") if entry.strip()]
    if not entries:
        return remote
    candidate = entries[-hops] if len(entries) >= hops else entries[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


#: Headers a proxy adds when it relays a request; a loopback request without them is a
#: probe from inside the host or container, not relayed outside traffic.
_RELAY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def is_local_probe(request: HttpRequest) -> bool:
    """Whether the request comes straight from this host (loopback, relayed by no proxy)."""
    if any(request.META.get(header) for header in _RELAY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", ""))).is_loopback
    except ValueError:
        return False


def ratelimit_key(group: str, request: Request) -> str:
    """Who is counted: the API key, else the staff user, else the client's IP."""
    key = getattr(request, "auth", None)
    if isinstance(key, APIKey):
        return f"key:{key.prefix}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def rate_for(group: str, request: Request) -> str:
    """The API key's own rate if it has one, else the group's default."""
    key = getattr(request, "auth", None)
    if isinstance(key, APIKey) and key.rate:
        return str(key.rate)
    return str(settings.POKEWATCH_RATES[group])


def tighter(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    """Of two counts of one request, the one that limits it (or leaves it least room)."""
    if first is None or second is None:
        return first or second
    if first["should_limit"] != second["should_limit"]:
        return first if first["should_limit"] else second
    if first["should_limit"]:
        return first if first["time_left"] >= second["time_left"] else second
    room = first["limit"] - first["count"], second["limit"] - second["count"]
    return first if room[0] <= room[1] else second


def usage_of(request: HttpRequest | Request) -> dict[str, Any] | None:
    """What the throttle counted for this request (``None``: not counted)."""
    http_request = getattr(request, "_request", request)
    return getattr(http_request, _USAGE_ATTRIBUTE, None)


class RateLimitThrottle(BaseThrottle):
    """Count the request in its group's django-ratelimit counter; refuse past the limit."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if getattr(view, "ratelimit_exempt_local_probes", False) and is_local_probe(request):
            return True  # the container's own health check: no client traffic can reach it
        group = getattr(view, "throttle_scope", None) or DEFAULT_GROUP
        usage = get_usage(request, group=group, key=ratelimit_key, rate=rate_for, increment=True)
        default = str(settings.POKEWATCH_RATES[group])
        if group in CAPPED_GROUPS and usage is not None and rate_for(group, request) != default:
            # A key's own rate does not lift the group's default here: counted against both.
            capped = get_usage(
                request, group=group, key=ratelimit_key, rate=default, increment=True
            )
            usage = tighter(usage, capped)
        if usage is not None and not usage["limit"] and getattr(view, "ratelimit_fail_open", False):
            usage = None  # counters unreachable, limits fail closed, but this view must answer
        self.usage = usage
        setattr(request._request, _USAGE_ATTRIBUTE, usage)
        if usage is None:
            if getattr(settings, "RATELIMIT_ENABLE", True):
                # Once per interval, not once per request: an outage must not flood the log.
                outages.warn(
                    "rate-limit counters",
                    "rate limiting unavailable (counter cache down): requests let through",
                )
            return True
        if usage["should_limit"]:
            RATELIMIT_REFUSALS.labels(group=group).inc()
            return False
        return True

    def wait(self) -> float | None:
        """None: the wait goes on the response once, with the other rate-limit headers
        (:class:`RateLimitHeadersMiddleware`), and into the message (the site's exception
        handler), both from :func:`usage_of`."""
        return None


def retry_after(usage: dict[str, Any]) -> int:
    """Seconds until the window of ``usage`` ends (at least 1)."""
    return max(int(usage["time_left"]), 1)


def limit_headers(usage: dict[str, Any], status_code: int) -> dict[str, str]:
    """The rate-limit headers of a response to a request that was counted with ``usage``."""
    headers = {
        "X-RateLimit-Limit": str(usage["limit"]),
        "X-RateLimit-Remaining": str(max(usage["limit"] - usage["count"], 0)),
    }
    if status_code == 429 and usage["should_limit"]:
        headers["Retry-After"] = str(retry_after(usage))
    return headers


class RateLimitHeadersMiddleware:
    """Put the rate-limit outcome of a counted request on its response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        usage = usage_of(request)
        if usage:
            for name, value in limit_headers(usage, response.status_code).items():
                response[name] = value
        return response
