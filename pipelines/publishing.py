"""Publish a model version's predictions and make it the champion, atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from pipelines.models import ModelVersion
from prices import caching
from prices.bulk import copy_lines
from prices.ingestion import card_pks
from prices.models import Prediction

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["card_id", "date", "market_price", "fair_price", "deviation", "signal"]


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
    """Write ``predictions`` for ``version``, flip the champion pointer, bump the cache.

    Those three happen in one transaction: if any of them fails, the previous champion
    and its predictions stay exactly as they were. Only after the commit are the other
    versions' predictions pruned (a failure there leaves extra rows, never missing ones).
    """
    frame = predictions.dropna(subset=["fair_price"])
    frame = frame[frame["fair_price"] > 0]
    with transaction.atomic():
        written = write_predictions(version, frame, progress=progress)
        ModelVersion.objects.filter(is_champion=True).exclude(pk=version.pk).update(
            is_champion=False
        )
        version.is_champion = True
        version.promoted_at = timezone.now()
        version.save(update_fields=["is_champion", "promoted_at"])
        generation = caching.bump_generation()
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
        deleted, _ = Prediction.objects.exclude(model_version=keep).delete()
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
    """Insert ``frame`` (PREDICTION_COLUMNS) as ``version``'s predictions; returns the count."""
    if frame.empty:
        return 0
    pks = card_pks(frame["card_id"].unique().tolist())
    missing = set(frame["card_id"].unique()) - pks.keys()
    if missing:
        raise ValueError(f"predictions for unknown cards: {sorted(missing)[:5]}")
    table = _table(frame, pks, version.pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_lines(
                cursor,
                Prediction._meta.db_table,
                list(table.columns),
                _tsv_chunks(table),
                progress=progress,
            )
    else:
        for start in range(0, len(table), 5000):
            Prediction.objects.bulk_create(
                Prediction(**row) for row in table.iloc[start : start + 5000].to_dict("records")
            )
    return len(frame)


def _table(frame: pd.DataFrame, pks: dict[str, int], version_pk: int) -> pd.DataFrame:
    """The rows as Prediction's columns, money rounded to cents, vectorised."""
    deviation = frame["deviation"].astype(float)
    return pd.DataFrame(
        {
            "card_id": frame["card_id"].map(pks).astype("int64").to_numpy(),
            "date": pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "market_price": frame["market_price"].astype(float).round(2).to_numpy(),
            "fair_price": frame["fair_price"].astype(float).round(2).clip(lower=0.01).to_numpy(),
            "deviation": deviation.where(np.isfinite(deviation), 0.0).round(6).to_numpy(),
            "signal": frame["signal"].to_numpy(),
            "model_version_id": version_pk,
        }
    )


def _tsv_chunks(table: pd.DataFrame, rows: int = 200_000) -> Iterator[str]:
    """COPY text in large blocks, formatted by pandas' C writer rather than per row."""
    for start in range(0, len(table), rows):
        yield table.iloc[start : start + rows].to_csv(
            sep="\t", header=False, index=False, float_format="%.6f", lineterminator="\n"
        )
