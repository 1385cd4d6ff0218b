"""Celery tasks: thin wrappers that take ids and call the services (pipelines.runs,
prices.collection). Training runs one at a time; collection retries transient failures."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pipelines.models import TrainingRun
from pipelines.runs import claim_run, run_training, sweep_stale_runs
from pokewatch_site.errors import SourceUnavailable

logger = logging.getLogger(__name__)
Status = TrainingRun.Status

#: A run re-delivered after its worker died is retried this many times, no more (a run
#: that kills its worker every time, e.g. by running out of memory, must not loop).
MAX_WORKER_LOST_RETRIES = 1


def enqueue_training(trigger: str) -> TrainingRun:
    """Record a queued run (or a skipped one) and send it to a worker after commit."""
    run = claim_run(trigger)
    if run.status == Status.QUEUED:
        transaction.on_commit(lambda: _send(run))
    return run


def _send(run: TrainingRun) -> None:
    try:
        result = train_model.apply_async(
            args=[run.pk], expires=settings.POKEWATCH_TRAINING_SOFT_LIMIT
        )
    except Exception as exc:  # broker unreachable: free the slot, say why
        logger.exception("could not queue training run %s", run.pk)
        TrainingRun.objects.filter(pk=run.pk).update(
            status=Status.FAILED,
            active_slot=None,
            finished_at=timezone.now(),
            error=f"could not reach the Celery broker: {type(exc).__name__}: {exc}"[:10_000],
        )
        return
    TrainingRun.objects.filter(pk=run.pk).update(task_id=result.id or "")


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.POKEWATCH_TRAINING_SOFT_LIMIT,
    time_limit=settings.POKEWATCH_TRAINING_HARD_LIMIT,
)
def train_model(run_id: int) -> dict[str, Any]:
    """Run the training pipeline for a queued run (see pipelines.runs)."""
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        return {"run": run_id, "status": "missing"}
    if run.status == Status.RUNNING:
        run = _take_over(run)  # re-delivered: the worker that started it died
    if run.status != Status.QUEUED:
        return {"run": run.pk, "status": run.status}
    finished = run_training(run_id=run.pk)
    return {"run": finished.pk, "status": finished.status}


def _take_over(dead: TrainingRun) -> TrainingRun:
    """Mark a run whose worker died as failed; queue one retry in its place."""
    retries = 0
    ancestor = dead
    while ancestor.retry_of_id is not None and retries <= MAX_WORKER_LOST_RETRIES:
        retries += 1
        ancestor = TrainingRun.objects.get(pk=ancestor.retry_of_id)
    with transaction.atomic():
        TrainingRun.objects.filter(pk=dead.pk).update(
            status=Status.FAILED,
            active_slot=None,
            finished_at=timezone.now(),
            error=f"the worker running it ({dead.worker or 'unknown'}) died; "
            + (
                "retried as a new run" if retries < MAX_WORKER_LOST_RETRIES else "not retried again"
            ),
        )
        if retries >= MAX_WORKER_LOST_RETRIES:
            return TrainingRun.objects.get(pk=dead.pk)
        retry = claim_run(dead.trigger, retry_of=dead)
    logger.warning("training run %s lost its worker; retrying as run %s", dead.pk, retry.pk)
    return retry


@shared_task
def scheduled_training() -> dict[str, Any]:
    """Beat's nightly entry: queue a training run unless one is already active."""
    run = enqueue_training(TrainingRun.Trigger.SCHEDULE)
    return {"run": run.pk, "status": run.status}


@shared_task
def sweep_training_runs() -> int:
    return sweep_stale_runs()


@shared_task(
    autoretry_for=(SourceUnavailable,),
    retry_backoff=60,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=1800,
    time_limit=1900,
)
def collect_prices_task(
    source: str | None = None, days: int | None = None, trigger: str = "schedule"
) -> dict[str, Any]:
    """Collect the latest prices from the configured source, then score them (no retraining).

    tcgcsv: today's live prices and the archives of the two days before, skipping days
    already ingested (a day missed while the worker or the network was down is caught up
    the next night). Unreachable source: the run is recorded as failed and retried later.
    """
    from prices.collection import collect_prices

    source = source or settings.POKEWATCH_PRICE_SOURCE
    if source == "tcgcsv":
        from prices.backfill import collect_days

        collected = collect_days(days=days or 3, trigger=trigger)
        logger.info("collection: %s", collected.summary())
        return {"received": collected.rows, "run": collected.run.pk, "scored": collected.scored}
    result = collect_prices(source, days=days or 1)
    logger.info("collection: %s", result.summary())
    return {"received": result.received, "created": result.created, "scored": result.scored}


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.POKEWATCH_TRAINING_SOFT_LIMIT,
    time_limit=settings.POKEWATCH_TRAINING_HARD_LIMIT,
)
def run_shard(task_id: int) -> None:
    """One phase of a training run on one shard of cards (see pipelines.sharding)."""
    from pipelines.sharding import execute_shard_task

    execute_shard_task(task_id)
