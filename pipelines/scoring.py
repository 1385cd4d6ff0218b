"""Score new prices with the current champion, without retraining."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef

from pipelines import drift, track_record
from pipelines.data import load_price_frame
from pipelines.estimators import BASELINE_NAMES, default_estimators, predictions_frame
from pipelines.features import TARGET_COLUMN, build_features
from pipelines.models import DriftReport, ModelVersion
from pipelines.publishing import write_predictions
from pipelines.signals import SignalConfig
from pipelines.training import ml_threads
from pokewatch_site.metrics import CARDS_SCORED
from prices import caching
from prices import predictions as prediction_store
from prices.models import Card, Prediction, PricePoint

logger = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    champion: str | None
    scored: int
    since: date | None
    graded: track_record.GradeResult | None = None
    #: Predictions replaced because their day's price was corrected (part of ``scored``
    #: when they could be predicted again).
    replaced: int = 0
    drift: DriftReport | None = None

    def summary(self) -> str:
        if self.champion is None:
            text = "no champion model yet: nothing scored (run_pipeline trains one)"
        else:
            text = f"scored {self.scored} new price(s) since {self.since} with {self.champion}"
            if self.replaced:
                text += f" ({self.replaced} of them corrected prices, predicted again)"
        if self.drift is not None:
            text += f"; drift: {self.drift.drifted_count} of {len(self.drift.features)} drifted"
        return text + (f"; {self.graded.summary()}" if self.graded else "")


def lookback_days(horizon: int) -> int:
    """History needed before a day to compute its features exactly (longest window 4H)."""
    return max(8 * horizon, 60)


def score(since: date | None = None) -> ScoreResult:
    """Predict every price in the serving window (or since ``since``) that has none yet or
    whose price was corrected after it was predicted, record the new days in the track
    record, and grade the records whose horizon passed.
    """
    result = _score(since)
    result.graded = track_record.grade()
    # The day's drift report (pipelines/drift.py); never fails the scoring.
    result.drift = drift.after_scoring(result)
    return result


def _score(since: date | None) -> ScoreResult:
    champion = ModelVersion.objects.filter(is_champion=True).first()
    if champion is None:
        return ScoreResult(None, 0, since)
    if since is None:
        latest = Card.objects.filter(active=True).aggregate(latest=Max("latest_price_date"))[
            "latest"
        ]
        if latest is None:
            return ScoreResult(str(champion), 0, None)
        since = latest - timedelta(days=settings.POKEWATCH_SERVING_WINDOW_DAYS - 1)
    with transaction.atomic():
        # A prediction whose price was corrected since is replaced: removed here, it is
        # one more missing prediction below, in the same transaction.
        replaced = prediction_store.delete_stale_predictions(champion.pk, since)
        missing = _unscored(champion, since)
        if missing.empty:
            if replaced:
                caching.bump_generation()
                logger.info("removed %d predictions of corrected prices", replaced)
            return ScoreResult(str(champion), 0, since, replaced=replaced)
        written = _predict(champion, missing)
        track_record.record_served(champion, since=missing["date"].min().date())
        caching.bump_generation()
    CARDS_SCORED.labels(trigger="ingestion").inc(missing["card_pk"].nunique())
    logger.info("scored %d new prices with %s (%d corrected)", written, champion, replaced)
    return ScoreResult(str(champion), written, since, replaced=replaced)


def _predict(champion: ModelVersion, missing: pd.DataFrame) -> int:
    """Predict the (card, day)s of ``missing`` and write them; how many were written."""
    estimator = estimator_for(champion)
    config = SignalConfig.from_settings(champion.signal_rule)
    first = (missing["date"].min() - pd.Timedelta(days=lookback_days(champion.horizon))).date()
    written = 0
    # Shard by shard of cards (the features of a card need its own prices only), so
    # memory stays that of one shard, whatever the number of cards to score.
    for low, high in _pk_ranges(missing["card_pk"].unique()):
        prices = load_price_frame(start=first, card_pk_range=(low, high))
        frame = build_features(prices, champion.horizon)
        frame = frame.merge(
            missing.loc[missing["card_pk"].between(low, high), ["card_id", "date"]],
            on=["card_id", "date"],
            how="inner",
        )
        if frame.empty:
            continue
        with ml_threads():
            band = estimator.predict_band(frame)
        predictions = predictions_frame(frame, band, config)
        predictions = predictions[predictions["fair_price"] > 0].drop(
            columns=[TARGET_COLUMN], errors="ignore"
        )
        written += write_predictions(champion, predictions)
    return written


def _pk_ranges(pks: Iterable[int]) -> list[tuple[int, int]]:
    """(first, last) primary keys of shards of ``POKEWATCH_SHARD_CARDS`` cards."""
    ordered = sorted(int(pk) for pk in pks)
    size = max(int(settings.POKEWATCH_SHARD_CARDS), 1)
    return [
        (ordered[i], ordered[min(i + size, len(ordered)) - 1]) for i in range(0, len(ordered), size)
    ]


def score_after_ingestion(first_date: date | None) -> ScoreResult | None:
    """Called by the ingestion services; a scoring failure never undoes an import."""
    if first_date is None:
        return None
    try:
        return score(since=first_date)
    except Exception:
        logger.exception("scoring after ingestion failed; run `manage.py score` to retry")
        return None


def estimator_for(version: ModelVersion) -> Any:
    """The version's fitted estimator from the MLflow registry.

    A baseline recorded without a registered model (published by hand, e.g. in a
    benchmark) is rebuilt unfitted: its fair value needs no fitting; it has no band.
    """
    if version.estimator in BASELINE_NAMES and not version.registered_version:
        return default_estimators()[version.estimator]
    return _load(version.registered_name, version.registered_version)


@lru_cache(maxsize=4)
def _load(registered_name: str, registered_version: str) -> Any:
    from pipelines import tracking

    return tracking.load_estimator(registered_name, registered_version)


def _unscored(champion: ModelVersion, since: date) -> pd.DataFrame:
    has_prediction = Prediction.objects.filter(
        model_version=champion, card=OuterRef("card"), date=OuterRef("date")
    )
    rows = (
        PricePoint.objects.filter(date__gte=since, card__active=True)
        .exclude(Exists(has_prediction))
        .values_list("card_id", "card__card_id", "date")
        .distinct()
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["card_pk", "card_id", "date"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame
