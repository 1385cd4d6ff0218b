"""Publish a model version's predictions and make it the champion, atomically."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

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
    records = _records(frame, pks, version.pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_lines(
                cursor,
                Prediction._meta.db_table,
                (
                    "card_id",
                    "date",
                    "market_price",
                    "fair_price",
                    "deviation",
                    "signal",
                    "model_version_id",
                ),
                ("\t".join(map(str, record)) + "\n" for record in records),
                total=len(frame),
                progress=progress,
            )
    else:
        batch: list[Prediction] = []
        for card, day, market, fair, dev, signal, version_pk in records:
            batch.append(
                Prediction(
                    card_id=card,
                    date=day,
                    market_price=market,
                    fair_price=fair,
                    deviation=dev,
                    signal=signal,
                    model_version_id=version_pk,
                )
            )
            if len(batch) >= 5000:
                Prediction.objects.bulk_create(batch)
                batch.clear()
        Prediction.objects.bulk_create(batch)
    return len(frame)


def _records(
    frame: pd.DataFrame, pks: dict[str, int], version_pk: int
) -> Iterator[tuple[object, ...]]:
    cards = frame["card_id"].map(pks).to_numpy()
    days = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d").to_numpy()
    market = frame["market_price"].round(2).map("{:.2f}".format).to_numpy()
    fair = frame["fair_price"].round(2).clip(lower=0.01).map("{:.2f}".format).to_numpy()
    deviation = frame["deviation"].to_numpy()
    signal = frame["signal"].to_numpy()
    for i in range(len(frame)):
        dev = float(deviation[i])
        yield (
            int(cards[i]),
            days[i],
            market[i],
            fair[i],
            round(dev, 6) if math.isfinite(dev) else 0.0,
            signal[i],
            version_pk,
        )
