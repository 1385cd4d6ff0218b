"""The admin's cache statistics page (/admin/cache-stats/), staff only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from prices import caching


@require_http_methods(["GET", "POST"])
def cache_stats(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        caching.clear()
        messages.success(request, "Prediction cache cleared and counters reset.")
        return HttpResponseRedirect(reverse("cache-stats"))
    context = {
        **admin.site.each_context(request),
        "title": "Prediction cache",
        "stats": caching.stats(),
    }
    return TemplateResponse(request, "admin/cache_stats.html", context)
