"""The bare Django app's only URL (:mod:`benchmarks.bare_settings`)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare/", bare, name="bench-bare")]
