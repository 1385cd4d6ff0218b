"""Publish a model version's predictions and make it the champion, atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from pipelines import track_record
from pipelines.estimators import PREDICTION_COLUMNS
from pipelines.models import ModelVersion
from prices import caching
from prices.bulk import copy_lines
from prices.ingestion import card_pks
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
    """Insert ``frame`` (PREDICTION_COLUMNS) as ``version``'s predictions; returns the count.

    The caller records what is served first (``track_record.record_served``) in the same
    transaction.
    """
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
            block = table.iloc[start : start + 5000]
            block = block.astype(object).where(block.notna(), None)  # NaN -> NULL
            Prediction.objects.bulk_create(Prediction(**row) for row in block.to_dict("records"))
    return len(frame)


def _table(frame: pd.DataFrame, pks: dict[str, int], version_pk: int) -> pd.DataFrame:
    """The rows as Prediction's columns, money rounded to cents, vectorised."""
    deviation = frame["deviation"].astype(float)
    return pd.DataFrame(
        {
            "card_id": pd.Series(np.asarray(frame["card_id"], dtype=object))
            .map(pks)
            .astype("int64")
            .to_numpy(),
            "date": pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "market_price": frame["market_price"].astype(float).round(2).to_numpy(),
            "fair_price": _money(frame["fair_price"]),
            # An estimator without a band (a baseline published by hand) leaves them NULL.
            "fair_low": _money(frame.get("fair_low", pd.Series(np.nan, index=frame.index))),
            "fair_high": _money(frame.get("fair_high", pd.Series(np.nan, index=frame.index))),
            "deviation": deviation.where(np.isfinite(deviation), 0.0).round(6).to_numpy(),
            "signal": frame["signal"].to_numpy(),
            "model_version_id": version_pk,
        }
    )


def _money(values: pd.Series) -> np.ndarray:
    """Prices rounded to cents, at least one cent; missing ones (no band) stay missing."""
    return values.astype(float).round(2).clip(lower=0.01).to_numpy()


def _tsv_chunks(table: pd.DataFrame, rows: int = 200_000) -> Iterator[str]:
    """COPY text in large blocks, formatted by pandas' C writer rather than per row.

    Missing values become ``\\N``, COPY's NULL.
    """
    for start in range(0, len(table), rows):
        yield table.iloc[start : start + rows].to_csv(
            sep="\t",
            header=False,
            index=False,
            float_format="%.6f",
            lineterminator="\n",
            na_rep="\\N",
        )
