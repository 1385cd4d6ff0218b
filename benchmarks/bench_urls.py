"""The real URLs plus trivial views to compare the API against (``benchmarks.api``).

* ``/bench/trivial/``: a plain Django view returning ``{"ok": true}``: the floor set by
  gunicorn, the middleware stack and the URL resolver.
* ``/bench/trivial-drf/``: the same through a DRF ``APIView`` without authentication,
  permissions or rate limits: adds DRF's request wrapping, negotiation and rendering.
* ``/bench/keyed/``: a DRF view with the API's real key authentication, permission and
  per-key rate limit, but a constant body: adds what every keyed endpoint pays before
  its own work (cache round trips for the key, the touch and the rate-limit counter).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def trivial(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


class TrivialDRFView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class KeyedView(APIView):
    """Default authentication, permission and throttle classes (a valid key is required)."""

    throttle_scope = "read"

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("bench/trivial/", trivial, name="bench-trivial"),
    path("bench/trivial-drf/", TrivialDRFView.as_view(), name="bench-trivial-drf"),
    path("bench/keyed/", KeyedView.as_view(), name="bench-keyed"),
    path("", include("pokewatch_site.urls")),
]
