"""Publish a model version's predictions and make it the champion, atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from django.db import transaction
from django.utils import timezone

from pipelines import track_record
from pipelines.estimators import PREDICTION_COLUMNS
from pipelines.models import ModelVersion
from prices import caching
from prices import predictions as prediction_store
from prices.models import Prediction

logger = logging.getLogger(__name__)

__all__ = ["PREDICTION_COLUMNS", "PublishResult", "promote", "publish", "write_predictions"]


@dataclass
class PublishResult:
    version: ModelVersion
    written: int
    pruned: int
    generation: int


def publish(
    version: ModelVersion,
    predictions: pd.DataFrame,
    *,
    progress: Callable[[str], None] | None = None,
) -> PublishResult:
    """Write ``predictions`` for ``version`` and make it the champion, in one transaction.

    See :func:`promote`; the training pipeline writes its predictions shard by shard
    beforehand and calls :func:`promote` alone.
    """
    frame = predictions.dropna(subset=["fair_price"])
    frame = frame[frame["fair_price"] > 0]
    with transaction.atomic():
        written = write_predictions(version, frame, progress=progress)
        generation = _make_champion(version)
    return _published(version, written, generation)


def promote(version: ModelVersion) -> PublishResult:
    """Make ``version``, whose predictions are written, the champion.

    In one transaction: the track record of the days this version serves first
    (``track_record.record_served``), the champion flip and the cache generation bump; if
    any of them fails, the previous champion and its predictions stay exactly as they
    were. Only after the commit are the other versions' predictions pruned (a failure
    there leaves extra rows, never missing ones); what was served stays in the track record.
    """
    with transaction.atomic():
        written = Prediction.objects.filter(model_version=version).count()
        generation = _make_champion(version)
    return _published(version, written, generation)


def _make_champion(version: ModelVersion) -> int:
    track_record.record_served(version)
    ModelVersion.objects.filter(is_champion=True).exclude(pk=version.pk).update(is_champion=False)
    version.is_champion = True
    version.promoted_at = timezone.now()
    version.save(update_fields=["is_champion", "promoted_at"])
    return caching.bump_generation()


def _published(version: ModelVersion, written: int, generation: int) -> PublishResult:
    pruned = prune_predictions(keep=version)
    logger.info(
        "published %s: %d predictions, pruned %d, cache generation %d",
        version,
        written,
        pruned,
        generation,
    )
    return PublishResult(version, written, pruned, generation)


def prune_predictions(keep: ModelVersion) -> int:
    try:
        deleted = prediction_store.delete_other_predictions(keep.pk)
    except Exception:  # pruning is housekeeping: the next publish retries it
        logger.exception("could not prune old predictions")
        return 0
    return deleted


def write_predictions(
    version: ModelVersion,
    frame: pd.DataFrame,
    *,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Insert ``frame`` (PREDICTION_COLUMNS) as ``version``'s predictions; returns the count.

    Written by the prices app, which keeps ``Prediction``
    (:func:`prices.predictions.store_predictions`), in the caller's transaction. The caller
    records what is served first (``track_record.record_served``) in the same transaction.
    """
    return prediction_store.store_predictions(version.pk, frame, progress=progress)
