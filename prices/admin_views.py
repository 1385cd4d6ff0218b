"""The admin's cache statistics page (/admin/cache-stats/).

Staff see the statistics with ``prices.view_cachegeneration`` and clear the cache with
``prices.clear_prediction_cache`` (superusers have both); anyone else gets 403.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from prices import caching

VIEW_PERMISSION = "prices.view_cachegeneration"
CLEAR_PERMISSION = "prices.clear_prediction_cache"


@require_http_methods(["GET", "POST"])
def cache_stats(request: HttpRequest) -> HttpResponse:
    can_clear = request.user.has_perm(CLEAR_PERMISSION)
    if request.method == "POST":
        if not can_clear:
            raise PermissionDenied(f"Clearing the prediction cache needs {CLEAR_PERMISSION}.")
        caching.clear()
        messages.success(request, "Prediction cache cleared and counters reset.")
        return HttpResponseRedirect(reverse("cache-stats"))
    if not (can_clear or request.user.has_perm(VIEW_PERMISSION)):
        raise PermissionDenied(f"The cache statistics need {VIEW_PERMISSION}.")
    context = {
        **admin.site.each_context(request),
        "title": "Prediction cache",
        "stats": caching.stats(),
        "can_clear": can_clear,
    }
    return TemplateResponse(request, "admin/cache_stats.html", context)
