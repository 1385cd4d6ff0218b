"""Training runs: claim the one active slot, run the ZenML pipeline, record the outcome.

At most one run is queued or running at a time, across every worker: a run holds
``active_slot = 1`` (a unique column) from the moment it is queued until it ends. A second
trigger meanwhile is recorded as ``skipped``, not queued behind. A run whose worker died
keeps the slot until it is re-delivered (then it is marked failed and retried once) or
until it is older than the hard time limit (then the sweep marks it failed).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
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
    """Mark failed the active runs older than the hard time limit (their worker is gone)."""
    limit = settings.POKEWATCH_TRAINING_HARD_LIMIT + 60
    cutoff = timezone.now() - timedelta(seconds=limit)
    stale = TrainingRun.objects.filter(active_slot=1, created_at__lt=cutoff)
    count = stale.update(
        status=Status.FAILED,
        active_slot=None,
        finished_at=timezone.now(),
        error=f"no result after {limit} s: the worker died or hit the time limit",
    )
    if count:
        logger.warning("marked %d stale training run(s) failed", count)
    return count


def run_training(
    *, trigger: str = TrainingRun.Trigger.COMMAND, run_id: int | None = None
) -> TrainingRun:
    """Run the pipeline in this process and return the finished :class:`TrainingRun`.

    Without ``run_id`` a run is claimed first (and may come back ``skipped``).
    """
    run = claim_run(trigger) if run_id is None else TrainingRun.objects.get(pk=run_id)
    if run.status != Status.QUEUED:
        return run
    TrainingRun.objects.filter(pk=run.pk).update(
        status=Status.RUNNING,
        started_at=timezone.now(),
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, sys.excepthook)
    try:
        from pipelines.pipeline import training_pipeline

        with ml_threads():
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
