from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import DatabaseError, connection
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from prices.models import Card

logger = logging.getLogger(__name__)


class HealthView(APIView):
    """Public liveness and dependency status; 200 when serving, 503 when the DB is down."""

    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request: Request) -> Response:
        body: dict[str, object] = {"status": "ok"}
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            body["database"] = "ok"
            body["cards"] = Card.objects.filter(active=True).count()
        except DatabaseError:
            logger.exception("health: database check failed")
            body["database"] = "error"
            body["status"] = "error"
            return Response(body, status=503)
        body["cache"] = _cache_status()
        if body["cache"] != "ok":
            body["status"] = "degraded"
        return Response(body)


def _cache_status() -> str:
    try:
        cache.set("health:probe", "1", timeout=5)
        return "ok" if cache.get("health:probe") == "1" else "error"
    except Exception:  # any backend failure means "not usable", never a 500
        logger.exception("health: cache check failed")
        return "error"
