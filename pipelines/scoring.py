"""Score new prices with the current champion, without retraining."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef

from pipelines import track_record
from pipelines.data import load_price_frame
from pipelines.estimators import BASELINE_NAMES, default_estimators, predictions_frame
from pipelines.features import TARGET_COLUMN, build_features
from pipelines.models import ModelVersion
from pipelines.publishing import write_predictions
from pipelines.signals import SignalConfig
from pipelines.training import ml_threads
from prices import caching
from prices.models import Prediction, PricePoint

logger = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    champion: str | None
    scored: int
    since: date | None
    graded: track_record.GradeResult | None = None

    def summary(self) -> str:
        if self.champion is None:
            text = "no champion model yet: nothing scored (run_pipeline trains one)"
        else:
            text = f"scored {self.scored} new price(s) since {self.since} with {self.champion}"
        return text + (f"; {self.graded.summary()}" if self.graded else "")


def lookback_days(horizon: int) -> int:
    """History needed before a day to compute its features exactly (longest window 4H)."""
    return max(8 * horizon, 60)


def score(since: date | None = None) -> ScoreResult:
    """Predict every price in the serving window (or since ``since``) that has none yet,
    record the new days in the track record, and grade the records whose horizon passed.
    """
    result = _score(since)
    result.graded = track_record.grade()
    return result


def _score(since: date | None) -> ScoreResult:
    champion = ModelVersion.objects.filter(is_champion=True).first()
    if champion is None:
        return ScoreResult(None, 0, since)
    if since is None:
        latest = PricePoint.objects.aggregate(latest=Max("date"))["latest"]
        if latest is None:
            return ScoreResult(str(champion), 0, None)
        since = latest - timedelta(days=settings.POKEWATCH_SERVING_WINDOW_DAYS - 1)
    missing = _unscored(champion, since)
    if missing.empty:
        return ScoreResult(str(champion), 0, since)

    # Every card's prices, not only the unscored ones: market features are medians over
    # all the cards observed on a day.
    first = missing["date"].min() - pd.Timedelta(days=lookback_days(champion.horizon))
    prices = load_price_frame(start=first.date())
    frame = build_features(prices, champion.horizon)
    frame = frame.merge(missing, on=["card_id", "date"], how="inner")
    with ml_threads():
        band = estimator_for(champion).predict_band(frame)
    predictions = predictions_frame(frame, band, SignalConfig.from_settings(champion.signal_rule))
    predictions = predictions[predictions["fair_price"] > 0].drop(
        columns=[TARGET_COLUMN], errors="ignore"
    )
    with transaction.atomic():
        written = write_predictions(champion, predictions)
        track_record.record_served(champion, since=missing["date"].min().date())
        caching.bump_generation()
    logger.info("scored %d new prices with %s", written, champion)
    return ScoreResult(str(champion), written, since)


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
        .values_list("card__card_id", "date")
        .distinct()
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["card_id", "date"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame
