"""Settings for the bare Django app ``benchmarks.api`` compares the API against.

One view (:mod:`benchmarks.bare_urls`) behind Django's ``SecurityMiddleware`` and
``CommonMiddleware`` only: no database, no cache, no apps. Served with the same gunicorn
configuration, worker class, workers and threads as the project, it is what Django itself
can answer on this machine, so everything the project adds (its middleware included)
counts against the project.
"""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("SECRET_KEY") or "bare-benchmark-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchmarks.bare_urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
