"""Per-key rate limits with django-ratelimit, answered the way DRF answers throttling.

The counters live in the ``ratelimit`` cache (Redis DB 2 in production). Each endpoint
group ("read", "batch", "public") has a default rate in ``POKEWATCH_RATES``; a key's own
``rate`` overrides it. Over the limit: 429 with ``Retry-After``; otherwise limited
responses carry ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``. If the counters'
cache is unreachable, ``RATELIMIT_FAIL_OPEN`` (default on) lets requests through, logged.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
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


def ratelimit_key(group: str, request: Request) -> str:
    key = getattr(request, "auth", None)
    if isinstance(key, APIKey):
        return f"key:{key.prefix}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def rate_for(group: str, request: Request) -> str:
    key = getattr(request, "auth", None)
    if isinstance(key, APIKey) and key.rate:
        return str(key.rate)
    return str(settings.POKEWATCH_RATES[group])


class RateLimitedMixin:
    """For DRF views: count the request after authentication; 429 past the limit."""

    ratelimit_group = "read"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
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
        usage = getattr(request, "ratelimit_usage", None)
        if usage:
            response["X-RateLimit-Limit"] = str(usage["limit"])
            response["X-RateLimit-Remaining"] = str(max(usage["limit"] - usage["count"], 0))
        return response
