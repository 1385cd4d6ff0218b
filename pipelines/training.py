"""The training pipeline as plain functions; ZenML steps (pipelines/steps.py) wrap them.

load prices → build features → train candidate → evaluate candidate, champion and
baselines → quality gate → register in MLflow → publish.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from threadpoolctl import threadpool_limits

from pipelines import tracking
from pipelines.data import load_price_frame
from pipelines.estimators import (
    MODEL_NAME,
    Band,
    FairValueEstimator,
    default_estimators,
    make_model,
    predictions_frame,
)
from pipelines.evaluation import backtest_feature_frame
from pipelines.features import TARGET_COLUMN, build_features, build_target
from pipelines.gate import GateConfig, GateDecision, decide
from pipelines.models import ModelVersion
from pipelines.publishing import PublishResult, publish
from pipelines.signals import SignalConfig

logger = logging.getLogger(__name__)


SERVING_BLOCK_ROWS = 500_000


class NotEnoughData(ValueError):
    pass


@dataclass(frozen=True)
class TrainingConfig:
    horizon: int = 30
    signal: SignalConfig = field(default_factory=SignalConfig)
    serving_window_days: int = 365
    gate: GateConfig = field(default_factory=GateConfig)

    @classmethod
    def from_settings(
        cls, *, horizon: int | None = None, rule: str | None = None
    ) -> TrainingConfig:
        return cls(
            horizon=horizon or settings.POKEWATCH_HORIZON_DAYS,
            signal=SignalConfig.from_settings(rule),
            serving_window_days=settings.POKEWATCH_SERVING_WINDOW_DAYS,
            gate=GateConfig.from_settings(),
        )

    def params(self) -> dict[str, Any]:
        flat = asdict(self)
        nested = {name: flat.pop(name) for name in ("signal", "gate")}
        return {
            **flat,
            **{f"{group}_{k}": v for group, values in nested.items() for k, v in values.items()},
        }


def ml_threads() -> threadpool_limits:
    """Cap the threads of scikit-learn's native code (``POKEWATCH_ML_THREADS``)."""
    return threadpool_limits(limits=settings.POKEWATCH_ML_THREADS)


def load_prices() -> pd.DataFrame:
    prices = load_price_frame()
    if prices.empty:
        raise NotEnoughData("there are no prices of active cards to train on")
    return prices


def make_feature_frame(prices: pd.DataFrame, config: TrainingConfig) -> pd.DataFrame:
    frame = build_features(prices, config.horizon)
    frame[TARGET_COLUMN] = build_target(prices, config.horizon).to_numpy()
    return frame


def train_candidate(frame: pd.DataFrame, config: TrainingConfig) -> FairValueEstimator:
    return make_model(horizon=config.horizon).fit(frame)


def evaluate(frame: pd.DataFrame, config: TrainingConfig) -> dict[str, Any]:
    """Walk-forward backtest of the model and the baselines on the shared feature frame."""
    return backtest_feature_frame(frame, horizon=config.horizon, signal=config.signal)


def champion_metrics(backtest: dict[str, Any]) -> dict[str, Any] | None:
    """The current champion's recipe, re-measured in this run's walk-forward backtest."""
    champion = ModelVersion.objects.filter(is_champion=True).first()
    if champion is None:
        return None
    return backtest["estimators"].get(champion.estimator)


def apply_gate(backtest: dict[str, Any], config: TrainingConfig) -> GateDecision:
    return decide(backtest["estimators"], champion_metrics(backtest), config.gate)


def winner_estimator(
    decision: GateDecision, candidate: FairValueEstimator, frame: pd.DataFrame
) -> FairValueEstimator:
    """The estimator to log (and publish if promoted), fitted on the whole frame."""
    if decision.estimator is None or decision.estimator == MODEL_NAME:
        return candidate  # when rejected, the candidate is still logged for the record
    # A baseline's fair value needs no fitting, but its empirical band does.
    return default_estimators()[decision.estimator].fit(frame)


def serving_predictions(
    estimator: FairValueEstimator, frame: pd.DataFrame, config: TrainingConfig
) -> pd.DataFrame:
    """Predictions for every (card, date) with a price in the serving window."""
    last = frame["date"].max()
    start = last - pd.Timedelta(days=config.serving_window_days - 1)
    rows = np.flatnonzero((frame["date"] >= start).to_numpy())
    parts = []
    # In blocks: a copy of the whole window of a 10k-card universe would cost gigabytes.
    for first in range(0, len(rows), SERVING_BLOCK_ROWS):
        block = frame.iloc[rows[first : first + SERVING_BLOCK_ROWS]]
        out = predictions_frame(block, estimator.predict_band(block), config.signal)
        out[TARGET_COLUMN] = block[TARGET_COLUMN].to_numpy()
        parts.append(out[np.isfinite(out["fair_price"])])
    if not parts:
        nothing = Band(np.empty(0), np.empty(0), np.empty(0))
        return predictions_frame(frame.iloc[:0], nothing, config.signal).assign(
            **{TARGET_COLUMN: []}
        )
    return pd.concat(parts, ignore_index=True)


def register(
    decision: GateDecision,
    candidate: FairValueEstimator,
    frame: pd.DataFrame,
    backtest: dict[str, Any],
    config: TrainingConfig,
    *,
    run_tags: dict[str, str] | None = None,
) -> tuple[str, ModelVersion | None, pd.DataFrame]:
    """Log the run to MLflow; register the winner when the gate promotes one."""
    winner = winner_estimator(decision, candidate, frame)
    predictions = serving_predictions(winner, frame, config)
    params = {**config.params(), "estimator": winner.name, "gate_reason": decision.reason}
    if hasattr(candidate, "get_params"):
        params.update({f"model_{k}": v for k, v in candidate.get_params().items()})
    run_id, model_uri = tracking.log_training_run(
        params=params,
        backtest=backtest,
        estimator=winner,
        predictions=predictions,
        tags=run_tags,
        input_example=frame.tail(5).drop(columns=[TARGET_COLUMN]),  # not a copy of it all
    )
    if not decision.promote:
        return run_id, None, predictions
    version = ModelVersion.objects.create(
        registered_name=settings.POKEWATCH_REGISTERED_MODEL,
        registered_version=tracking.register(model_uri),
        mlflow_run_id=run_id,
        estimator=winner.name,
        horizon=config.horizon,
        signal_rule=config.signal.rule,
        data_start=frame["date"].min().date(),
        data_end=frame["date"].max().date(),
        metrics=backtest["estimators"].get(winner.name, {}),
    )
    return run_id, version, predictions


def publish_version(version: ModelVersion, predictions: pd.DataFrame) -> PublishResult:
    result = publish(version, predictions.drop(columns=[TARGET_COLUMN], errors="ignore"))
    try:
        tracking.set_champion_alias(version.registered_version)
    except Exception:  # the database is what the API serves; the alias can be set again
        logger.exception("published %s but could not move the MLflow alias", version)
    return result


def promote_version(registered_version: str) -> PublishResult:
    """Make an earlier registered version the champion again (a rollback).

    Its predictions for the serving window are recomputed from today's prices with that
    version's own estimator (loaded from MLflow) and published atomically, like a new
    champion: on any failure the current champion stays.
    """
    from pipelines.scoring import estimator_for
    from prices.errors import NotFound

    version = ModelVersion.objects.filter(
        registered_name=settings.POKEWATCH_REGISTERED_MODEL,
        registered_version=registered_version,
    ).first()
    if version is None:
        raise NotFound(
            f"no version {registered_version!r} of {settings.POKEWATCH_REGISTERED_MODEL} "
            "is recorded here (see the admin's Model versions)"
        )
    config = TrainingConfig.from_settings(horizon=version.horizon, rule=version.signal_rule)
    with ml_threads():
        frame = make_feature_frame(load_prices(), config)
        predictions = serving_predictions(estimator_for(version), frame, config)
    return publish_version(version, predictions)
