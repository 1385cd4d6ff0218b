"""The Celery app (the standard Django layout: settings under the CELERY_ namespace)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokewatch_site.settings")

app = Celery("pokewatch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
