"""Training runs: claim the one active slot, run the ZenML pipeline, record the outcome.

At most one run is queued or running at a time, across every worker: a run holds
``active_slot = 1`` (a unique column) from the moment it is queued until it ends. A second
trigger meanwhile is recorded as ``skipped``, not queued behind.

A running run heartbeats: a thread of the process running it touches ``heartbeat_at``
every ``POKEWATCH_TRAINING_HEARTBEAT_SECONDS``. A run whose worker died (its pool child
alone, or the whole worker) stops beating, and the sweep (every minute on beat, and before
every new trigger) marks it failed once its heartbeat is older than
``POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT``, which frees the slot. A re-delivered task of a
run the sweep has not failed yet takes it over (failed, retried once: pipelines.tasks). A
run older than the hard time limit is failed too (a queued run no worker ever took).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from pipelines.models import TrainingRun
from pipelines.training import ml_threads
from pipelines.zenml_env import restore_process_state

logger = logging.getLogger(__name__)
Status = TrainingRun.Status


def claim_run(trigger: str, *, retry_of: TrainingRun | None = None) -> TrainingRun:
    """A new queued run holding the active slot, or a ``skipped`` record if it is taken."""
    sweep_stale_runs()
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(
                trigger=trigger, status=Status.QUEUED, active_slot=1, retry_of=retry_of
            )
    except IntegrityError:
        active = TrainingRun.objects.filter(active_slot=1).first()
        busy = f"run #{active.pk} is {active.status}" if active else "another run is active"
        return TrainingRun.objects.create(
            trigger=trigger,
            status=Status.SKIPPED,
            reason=f"skipped: {busy}; only one training run at a time",
            finished_at=timezone.now(),
        )


def sweep_stale_runs() -> int:
    """Mark failed the active runs whose worker is gone: a running run whose heartbeat
    stopped, and any run older than the hard time limit."""
    now = timezone.now()
    silent = settings.POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT
    limit = settings.POKEWATCH_TRAINING_HARD_LIMIT + 60
    active = TrainingRun.objects.filter(active_slot=1)
    dead = active.alias(last_beat=Coalesce("heartbeat_at", "started_at", "created_at")).filter(
        status=Status.RUNNING, last_beat__lt=now - timedelta(seconds=silent)
    )
    count = dead.update(
        status=Status.FAILED,
        active_slot=None,
        finished_at=now,
        error=f"no heartbeat for {silent} s: the worker running it died",
    )
    count += active.filter(created_at__lt=now - timedelta(seconds=limit)).update(
        status=Status.FAILED,
        active_slot=None,
        finished_at=now,
        error=f"no result after {limit} s: the worker died or hit the time limit",
    )
    if count:
        logger.warning("marked %d stale training run(s) failed", count)
    return count


@contextmanager
def heartbeat(run_id: int) -> Iterator[None]:
    """While the body runs, touch the run's ``heartbeat_at`` every
    ``POKEWATCH_TRAINING_HEARTBEAT_SECONDS`` from a thread of this process (the body may
    spend far longer than that in one step)."""
    interval = settings.POKEWATCH_TRAINING_HEARTBEAT_SECONDS
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError as exc:  # the next beat tries again
                    logger.warning("training run %s: heartbeat not recorded: %s", run_id, exc)
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=beat, name=f"training-run-{run_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 10)


def run_training(
    *, trigger: str = TrainingRun.Trigger.COMMAND, run_id: int | None = None
) -> TrainingRun:
    """Run the pipeline in this process and return the finished :class:`TrainingRun`.

    Without ``run_id`` a run is claimed first (and may come back ``skipped``).
    """
    run = claim_run(trigger) if run_id is None else TrainingRun.objects.get(pk=run_id)
    if run.status != Status.QUEUED:
        return run
    now = timezone.now()
    TrainingRun.objects.filter(pk=run.pk).update(
        status=Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, sys.excepthook)
    try:
        # The heartbeat starts with the run, before the import: ZenML and scikit-learn
        # take seconds to import (more on a busy machine), time the sweep would count.
        with heartbeat(run.pk), ml_threads():
            from pipelines.pipeline import training_pipeline

            result = training_pipeline.with_options(
                run_name=f"pokewatch-training-{run.pk}-{uuid.uuid4().hex[:8]}"
            )(run_id=run.pk)
    except BaseException as exc:  # includes Celery's SoftTimeLimitExceeded
        logger.exception("training run %s failed", run.pk)
        run.refresh_from_db()
        run.status = Status.FAILED
        run.error = run.error or f"{type(exc).__name__}: {exc}"[:10_000]
        run.finished_at = timezone.now()
        run.active_slot = None
        run.save(update_fields=["status", "error", "finished_at", "active_slot"])
        if not isinstance(exc, Exception):
            raise
        return run
    finally:
        restore_process_state(*saved)

    run.refresh_from_db()
    run.zenml_run_id = str(getattr(result, "id", "") or "")
    run.promoted = bool(run.candidate_id and run.candidate and run.candidate.is_champion)
    run.status = Status.SUCCEEDED if run.promoted else Status.REJECTED
    run.finished_at = timezone.now()
    run.active_slot = None
    run.save(update_fields=["zenml_run_id", "promoted", "status", "finished_at", "active_slot"])
    return run
