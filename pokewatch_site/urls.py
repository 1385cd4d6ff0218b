from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from pokewatch_site.health import HealthView
from pokewatch_site.views import APINotFoundView, metrics
from prices.admin_views import cache_stats

# Under /api/, a 400 raised outside any view (e.g. a Host not in ALLOWED_HOSTS) is JSON.
handler400 = "pokewatch_site.middleware.bad_request"

urlpatterns = [
    path("admin/cache-stats/", admin.site.admin_view(cache_stats), name="cache-stats"),
    path("admin/", admin.site.urls),
    path("api/v1/health/", HealthView.as_view(), name="health"),
    # Prometheus scrapes it: a bearer token, or loopback only (pokewatch_site.metrics).
    path("metrics", metrics, name="metrics"),
    path("api/v1/", include("prices.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI with its init script served as a file (?script), not inline: the CSP
    # allows scripts from this site only.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # Any other /api/ path: a JSON 404, whatever DEBUG says.
    re_path(r"^api/(?P<path>[\s\S]*)\Z", APINotFoundView.as_view()),
]
