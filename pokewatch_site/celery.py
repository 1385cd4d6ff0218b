"""The Celery app (the standard Django layout: settings under the CELERY_ namespace).

With ``POKEWATCH_WORKER_METRICS_PORT`` set, a worker counts its tasks in prometheus-client's
multiprocess mode (the pool's processes write to ``PROMETHEUS_MULTIPROC_DIR``, a fresh
directory unless one is given) and its main process serves them on that port, under the
same token rule as the web's ``/metrics`` (pokewatch_site.metrics).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokewatch_site.settings")
if os.environ.get("POKEWATCH_WORKER_METRICS_PORT", "").strip() not in ("", "0"):
    # Before prometheus-client is imported (Django's set-up imports it): the mode is fixed
    # at import. The pool's processes inherit the directory.
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="pokewatch-worker-metrics-")
    )

app = Celery("pokewatch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _count(sender: Any, state: str) -> None:
    from pokewatch_site.metrics import CELERY_TASKS

    name = getattr(sender, "name", None) or str(sender)
    CELERY_TASKS.labels(task=name, state=state).inc()


@signals.task_prerun.connect
def _task_started(sender: Any = None, **_: Any) -> None:
    _count(sender, "started")


@signals.task_success.connect
def _task_succeeded(sender: Any = None, **_: Any) -> None:
    _count(sender, "succeeded")


@signals.task_failure.connect
def _task_failed(sender: Any = None, **_: Any) -> None:
    _count(sender, "failed")


@signals.task_retry.connect
def _task_retried(sender: Any = None, **_: Any) -> None:
    _count(sender, "retried")


@signals.task_revoked.connect
def _task_revoked(sender: Any = None, request: Any = None, **_: Any) -> None:
    _count(getattr(request, "task", None) or sender, "revoked")


@signals.worker_init.connect
def _clear_worker_metrics(**_: Any) -> None:
    """A restarted worker starts from zero: old processes' files would be added forever."""
    from pokewatch_site.metrics_server import clear_multiprocess_dir

    clear_multiprocess_dir()


@signals.worker_ready.connect
def _serve_worker_metrics(**_: Any) -> None:
    from django.conf import settings

    if settings.POKEWATCH_WORKER_METRICS_PORT:
        from pokewatch_site.metrics_server import serve_in_thread

        serve_in_thread(
            settings.POKEWATCH_WORKER_METRICS_ADDR, settings.POKEWATCH_WORKER_METRICS_PORT
        )
