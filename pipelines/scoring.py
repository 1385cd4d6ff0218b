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

from pipelines.data import load_price_frame
from pipelines.estimators import BASELINE_NAMES, default_estimators, predictions_frame
from pipelines.features import TARGET_COLUMN, build_features
from pipelines.models import ModelVersion
from pipelines.publishing import write_predictions
from pipelines.training import ml_threads
from prices import caching
from prices.models import Prediction, PricePoint

logger = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    champion: str | None
    scored: int
    since: date | None

    def summary(self) -> str:
        if self.champion is None:
            return "no champion model yet: nothing scored (run_pipeline trains one)"
        return f"scored {self.scored} new price(s) since {self.since} with {self.champion}"


def lookback_days(horizon: int) -> int:
    """History needed before a day to compute its features exactly (longest window 4H)."""
    return max(8 * horizon, 60)


def score(since: date | None = None) -> ScoreResult:
    """Predict every price in the serving window (or since ``since``) that has none yet."""
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

    first = missing["date"].min() - pd.Timedelta(days=lookback_days(champion.horizon))
    prices = load_price_frame(start=first.date(), card_ids=missing["card_id"].unique().tolist())
    frame = build_features(prices, champion.horizon)
    frame = frame.merge(missing, on=["card_id", "date"], how="inner")
    with ml_threads():
        fair = estimator_for(champion).predict(frame)
    predictions = predictions_frame(
        frame, fair, settings.POKEWATCH_BUY_THRESHOLD, settings.POKEWATCH_SELL_THRESHOLD
    )
    predictions = predictions[predictions["fair_price"] > 0].drop(
        columns=[TARGET_COLUMN], errors="ignore"
    )
    with transaction.atomic():
        written = write_predictions(champion, predictions)
        caching.bump_generation()
    logger.info("scored %d new prices with %s", written, champion)
    return ScoreResult(str(champion), written, since)


def score_after_ingestion(first_date: date | None) -> ScoreResult | None:
    """Called by the ingestion services; a scoring failure never undoes an import."""
    if first_date is None or not ModelVersion.objects.filter(is_champion=True).exists():
        return None
    try:
        return score(since=first_date)
    except Exception:
        logger.exception("scoring after ingestion failed; run `manage.py score` to retry")
        return None


def estimator_for(version: ModelVersion) -> Any:
    if version.estimator in BASELINE_NAMES:
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
