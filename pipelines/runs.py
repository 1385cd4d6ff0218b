"""Start a training run: record it, run the ZenML pipeline, record the outcome."""

from __future__ import annotations

import logging
import sys
import uuid

from django.utils import timezone

from pipelines.models import TrainingRun
from pipelines.training import ml_threads
from pipelines.zenml_env import restore_process_state

logger = logging.getLogger(__name__)


def run_training(
    *, trigger: str = TrainingRun.Trigger.COMMAND, run_id: int | None = None
) -> TrainingRun:
    """Run the pipeline in this process and return the finished :class:`TrainingRun`."""
    if run_id is None:
        run = TrainingRun.objects.create(trigger=trigger)
    else:
        run = TrainingRun.objects.get(pk=run_id)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.RUNNING, started_at=timezone.now()
    )
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, sys.excepthook)
    try:
        from pipelines.pipeline import training_pipeline

        with ml_threads():
            result = training_pipeline.with_options(
                run_name=f"pokewatch-training-{run.pk}-{uuid.uuid4().hex[:8]}"
            )(run_id=run.pk)
    except Exception as exc:
        logger.exception("training run %s failed", run.pk)
        run.refresh_from_db()
        run.status = TrainingRun.Status.FAILED
        run.error = run.error or f"{type(exc).__name__}: {exc}"[:10_000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        return run
    finally:
        restore_process_state(*saved)

    run.refresh_from_db()
    run.zenml_run_id = str(getattr(result, "id", "") or "")
    run.promoted = bool(run.candidate_id and run.candidate and run.candidate.is_champion)
    run.status = TrainingRun.Status.SUCCEEDED if run.promoted else TrainingRun.Status.REJECTED
    run.finished_at = timezone.now()
    run.save(update_fields=["zenml_run_id", "promoted", "status", "finished_at"])
    return run
