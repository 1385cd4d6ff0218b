"""``GET /api/v1/health/``: the public status of the database, cache and broker."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema, inline_serializer
from kombu import Connection
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pokewatch_site import outages
from pokewatch_site.api import ERROR
from prices import selectors
from prices.models import Card

logger = logging.getLogger(__name__)


class HealthView(APIView):
    """Public status of the database, cache and broker; 503 when the database is down."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_scope = "public"
    # With RATELIMIT_FAIL_OPEN=0 and the counters down, still answer ("degraded"), never
    # 429: the container's health check must see the truth, not the limiter's outage.
    ratelimit_fail_open = True
    # Nor may clients use up its budget: loopback probes with no proxy header (the image's
    # HEALTHCHECK) are not counted; everyone else per client IP (accounts.ratelimit).
    ratelimit_exempt_local_probes = True

    @extend_schema(
        responses={
            200: inline_serializer(
                "Health",
                {
                    "status": serializers.ChoiceField(choices=["ok", "degraded", "error"]),
                    "database": serializers.CharField(),
                    "cache": serializers.CharField(),
                    "broker": serializers.CharField(),
                    "cards": serializers.IntegerField(),
                    "champion": serializers.CharField(allow_null=True),
                },
            ),
            429: ERROR,
            503: inline_serializer(
                "HealthDown",
                {"status": serializers.CharField(), "database": serializers.CharField()},
            ),
        }
    )
    def get(self, request: Request) -> Response:
        body: dict[str, object] = {"status": "ok"}
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            body["database"] = "ok"
            body["cards"] = Card.objects.filter(active=True).count()
            champion = selectors.champion()
            body["champion"] = champion.label if champion else None
        except DatabaseError:
            logger.exception("health: database check failed")
            return Response({"status": "error", "database": "error"}, status=503)
        body["cache"] = _cache_status()
        body["broker"] = _broker_status()
        if body["cache"] != "ok" or body["broker"] != "ok":
            body["status"] = "degraded"
        return Response(body)


#: Seconds a health check waits for the broker's answer (the whole check stays under 2 s).
BROKER_CHECK_TIMEOUT = 0.5
BROKER = "Celery broker"


@contextmanager
def broker_connection(timeout: float = BROKER_CHECK_TIMEOUT) -> Iterator[Connection]:
    """A connection to the broker that fails within ``timeout`` (down or hung alike)."""
    from pokewatch_site.celery import app

    options = {}
    if str(app.conf.broker_write_url or app.conf.broker_url).startswith("redis"):
        # A broker that accepts connections but never answers fails the check in time.
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    with app.connection_for_write(transport_options=options, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=0, timeout=timeout)
        yield conn


def _broker_status() -> str:
    if outages.is_down(BROKER):  # failed less than an interval ago: not asked again yet
        return "error"
    try:
        with broker_connection():
            pass
    except Exception as exc:  # unreachable broker: background work stalls, reads still work
        outages.failed(BROKER, exc)
        return "error"
    outages.succeeded(BROKER)
    return "ok"


def _cache_status() -> str:
    from django.core.cache import cache

    # Bounded by the cache's socket timeouts; a Redis found down is skipped at once and
    # logged once per interval by the cache client (pokewatch_site.redis_client).
    try:
        cache.set("health:probe", "1", timeout=5)
        return "ok" if cache.get("health:probe") == "1" else "error"
    except Exception as exc:  # any backend failure means "not usable", never a 500
        outages.warn("cache", f"health: cache check failed ({type(exc).__name__}: {exc})")
        return "error"
