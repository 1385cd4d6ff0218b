"""Site-wide DRF views that belong to no app (``health/`` is in :mod:`pokewatch_site.health`)."""

from __future__ import annotations

from typing import Any

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
