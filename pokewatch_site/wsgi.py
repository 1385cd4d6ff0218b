"""WSGI entry point (gunicorn pokewatch_site.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokewatch_site.settings")

from pokewatch_site.middleware import WSGIRequestGuard

# Chunked bodies reach Django with a length (it ignores a body without one); a non-text
# charset is refused before Django would fail on it.
application = WSGIRequestGuard(get_wsgi_application())
