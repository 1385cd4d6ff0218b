"""Site-wide views that belong to no app (``health/`` is in :mod:`pokewatch_site.health`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class APINotFoundView(APIView):
    """Any /api/ path that no route matched: DRF's 404, for every method.

    Public (no key needed to learn that a path does not exist), counted in the "public"
    rate-limit group by client IP like other unauthenticated probes.
    """

    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    throttle_scope = "public"
    schema = None  # not an endpoint of the API's schema

    def http_method_not_allowed(  # type: ignore[override]
        self, request: Request, *args: Any, **kwargs: Any
    ) -> Response:
        raise exceptions.NotFound(f"Not found: {request.path}")

    options = http_method_not_allowed


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: Prometheus text format (OpenMetrics if the scraper asks for it).

    A bearer token (``POKEWATCH_METRICS_TOKEN``) is required; without one set, only
    loopback clients are answered (:func:`pokewatch_site.metrics.refusal`). Refusals are
    JSON ``{"detail": ...}`` like the API's.
    """
    from pokewatch_site import metrics as site_metrics

    refused = site_metrics.refusal(
        request.META.get("HTTP_AUTHORIZATION", ""), request.META.get("REMOTE_ADDR", "")
    )
    if refused is not None:
        status, detail = refused
        response = JsonResponse({"detail": detail}, status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = site_metrics.exposition(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(body, content_type=content_type)
