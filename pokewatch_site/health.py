"""``GET /api/v1/health/``: the public status of the database, cache and broker."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pokewatch_site.api import ERROR
from prices import selectors
from prices.models import Card

logger = logging.getLogger(__name__)


class HealthView(APIView):
    """Public status of the database, cache and broker; 503 when the database is down."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_scope = "public"

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


def _broker_status() -> str:
    from pokewatch_site.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
        return "ok"
    except Exception:  # unreachable broker: background work stalls, reads still work
        logger.warning("health: broker unreachable", exc_info=True)
        return "error"


def _cache_status() -> str:
    from django.core.cache import cache

    try:
        cache.set("health:probe", "1", timeout=5)
        return "ok" if cache.get("health:probe") == "1" else "error"
    except Exception:  # any backend failure means "not usable", never a 500
        logger.exception("health: cache check failed")
        return "error"
