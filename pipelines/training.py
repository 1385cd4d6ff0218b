"""The training pipeline as plain functions; ZenML steps (pipelines/steps.py) wrap them.

plan the card shards → sample the training rows → train the candidate → evaluate the
candidate, the champion's recipe and the baselines (walk-forward, shard by shard) →
quality gate → register in MLflow → drift of the latest days against the training sample
→ serve (the winner's predictions, shard by shard) → publish (the champion flip). Every
step that reads prices does it one shard of cards at a time (pipelines/sharding.py), so
memory does not grow with the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd
from django.conf import settings
from django.db.models import Max
from threadpoolctl import threadpool_limits

from pipelines import tracking
from pipelines.estimators import MODEL_NAME, FairValueEstimator, default_estimators, make_model
from pipelines.evaluation import (
    DEFAULT_FOLDS,
    DEFAULT_TEST_FRACTION,
    finalize_backtest,
    fold_cuts,
    fold_estimators,
)
from pipelines.features import TARGET_COLUMN
from pipelines.gate import GateConfig, GateDecision, decide
from pipelines.models import DriftReport, ModelVersion
from pipelines.publishing import PublishResult, promote
from pipelines.sharding import Plan, make_plan, run_phase
from pipelines.signals import SignalConfig
from prices import predictions as prediction_store
from prices.models import Card, Prediction

logger = logging.getLogger(__name__)


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


Progress = Callable[[str], None] | None


def plan() -> Plan:
    """The shards of the active cards; refuses an empty database."""
    planned = make_plan()
    if not planned.prices:
        raise NotEnoughData("there are no prices of active cards to train on")
    return planned


def sample_training(
    planned: Plan, config: TrainingConfig, *, run_id: int | None = None, progress: Progress = None
) -> tuple[pd.DataFrame, list[str]]:
    """The training sample (~1M rows with a target, over every shard) and every day seen."""
    results = run_phase(
        "sample",
        planned.shards,
        run_id=run_id,
        on_shard=progress,
        horizon=config.horizon,
        rate=planned.sample_rate,
        as_of=planned.last_day,
    )
    frames = [frame for frame, _ in results]
    sample = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "card_id" in sample:
        sample["card_id"] = sample["card_id"].astype("category")
    if sample.empty:
        raise NotEnoughData("no card has a complete horizon of prices to learn from yet")
    days = sorted({day.isoformat() for _, seen in results for day in seen})
    return sample, days


def train_candidate(sample: pd.DataFrame, config: TrainingConfig) -> FairValueEstimator:
    return make_model(horizon=config.horizon).fit(sample)


def evaluate(
    planned: Plan,
    sample: pd.DataFrame,
    days: list[str],
    config: TrainingConfig,
    *,
    run_id: int | None = None,
    progress: Progress = None,
) -> dict[str, Any]:
    """Walk-forward backtest of the model and the baselines: fold models fitted on the
    sample here, every shard's rows tallied where it runs, the tallies added up."""
    cuts = fold_cuts(pd.Series(pd.to_datetime(days)), None, DEFAULT_FOLDS, DEFAULT_TEST_FRACTION)
    models = fold_estimators(
        sample, cuts, config.horizon, lambda: default_estimators(horizon=config.horizon)
    )
    results = run_phase(
        "evaluate",
        planned.shards,
        run_id=run_id,
        on_shard=progress,
        horizon=config.horizon,
        cuts=cuts,
        models=models,
        config=config.signal,
        as_of=planned.last_day,
    )
    tallies = [t for t, _ in results]
    bases = [b for _, b in results]
    return finalize_backtest(config.horizon, cuts, config.signal, tallies, bases)


def champion_metrics(backtest: dict[str, Any]) -> dict[str, Any] | None:
    """The current champion's recipe, re-measured in this run's walk-forward backtest."""
    champion = ModelVersion.objects.filter(is_champion=True).first()
    if champion is None:
        return None
    return backtest["estimators"].get(champion.estimator)


def apply_gate(backtest: dict[str, Any], config: TrainingConfig) -> GateDecision:
    return decide(backtest["estimators"], champion_metrics(backtest), config.gate)


def winner_estimator(
    decision: GateDecision, candidate: FairValueEstimator, sample: pd.DataFrame
) -> FairValueEstimator:
    """The estimator to log (and publish if promoted), fitted on the training sample."""
    if decision.estimator is None or decision.estimator == MODEL_NAME:
        return candidate  # when rejected, the candidate is still logged for the record
    # A baseline's fair value needs no fitting, but its empirical band does.
    return default_estimators()[decision.estimator].fit(sample)


def register(
    decision: GateDecision,
    candidate: FairValueEstimator,
    sample: pd.DataFrame,
    backtest: dict[str, Any],
    config: TrainingConfig,
    *,
    run_tags: dict[str, str] | None = None,
) -> tuple[str, ModelVersion | None]:
    """Log the run to MLflow; register the winner when the gate promotes one."""
    winner = winner_estimator(decision, candidate, sample)
    params = {**config.params(), "estimator": winner.name, "gate_reason": decision.reason}
    if hasattr(candidate, "get_params"):
        params.update({f"model_{k}": v for k, v in candidate.get_params().items()})
    run_id, model_uri = tracking.log_training_run(
        params=params,
        backtest=backtest,
        estimator=winner,
        tags=run_tags,
        input_example=sample.tail(5).drop(columns=[TARGET_COLUMN]),
    )
    if not decision.promote:
        return run_id, None
    version = ModelVersion.objects.create(
        registered_name=settings.POKEWATCH_REGISTERED_MODEL,
        registered_version=tracking.register(model_uri),
        mlflow_run_id=run_id,
        estimator=winner.name,
        horizon=config.horizon,
        signal_rule=config.signal.rule,
        data_start=sample["date"].min().date(),
        data_end=_last_day(),  # the newest price it could see (its targets end there)
        metrics=backtest["estimators"].get(winner.name, {}),
    )
    return run_id, version


def check_drift(
    planned: Plan,
    sample: pd.DataFrame,
    decision: GateDecision,
    candidate: FairValueEstimator,
    config: TrainingConfig,
    *,
    run_id: int | None = None,
    version: ModelVersion | None = None,
) -> DriftReport | None:
    """The run's drift report (pipelines/drift.py): the training sample and the logged
    estimator's in-sample predictions against the latest days. Monitoring, not a gate: a
    failure is logged as a warning and the run goes on."""
    from pipelines import drift
    from pipelines.models import TrainingRun

    try:
        mlflow_run_id = (
            TrainingRun.objects.filter(pk=run_id).values_list("mlflow_run_id", flat=True).first()
            if run_id
            else None
        ) or (version.mlflow_run_id if version else "")
        return drift.training_report(
            run_id=run_id,
            sample=sample,
            estimator=winner_estimator(decision, candidate, sample),
            horizon=config.horizon,
            last_day=planned.last_day,
            version=version,
            mlflow_run_id=mlflow_run_id,
        )
    except Exception:
        logger.warning("training run %s: drift could not be computed", run_id, exc_info=True)
        return None


def _last_day() -> date | None:
    last: date | None = Card.objects.filter(active=True).aggregate(last=Max("latest_price_date"))[
        "last"
    ]
    return last


def serve(
    version: ModelVersion,
    planned: Plan,
    config: TrainingConfig,
    *,
    run_id: int | None = None,
    progress: Progress = None,
) -> int:
    """Write the version's predictions of every price in the serving window, shard by
    shard; they stay invisible until :func:`publish_version` makes it the champion. On
    any failure the partial predictions are removed."""
    from pipelines.scoring import estimator_for

    if planned.last_day is None:
        return 0
    start = planned.last_day - timedelta(days=config.serving_window_days - 1)
    prediction_store.delete_predictions(version.pk)  # a re-run, or a rollback
    try:
        written = run_phase(
            "serve",
            planned.shards,
            run_id=run_id,
            on_shard=progress,
            version_id=version.pk,
            estimator=estimator_for(version),
            config=config.signal,
            horizon=config.horizon,
            start=start,
        )
    except BaseException:
        prediction_store.delete_predictions(version.pk)
        raise
    tracking.log_serving_plots(version)
    return int(sum(written))


def cards_scored(version: ModelVersion, planned: Plan) -> int:
    """How many cards ``version`` scored on the newest day of prices (its predictions)."""
    if planned.last_day is None:
        return 0
    return Prediction.objects.filter(model_version=version, date=planned.last_day).count()


def publish_version(version: ModelVersion) -> PublishResult:
    result = promote(version)
    try:
        tracking.set_champion_alias(version.registered_version)
    except Exception:  # the database is what the API serves; the alias can be set again
        logger.exception("published %s but could not move the MLflow alias", version)
    return result


def promote_version(registered_version: str, *, progress: Progress = None) -> PublishResult:
    """Make an earlier registered version the champion again (a rollback).

    Its predictions for the serving window are recomputed from today's prices with that
    version's own estimator (loaded from MLflow), shard by shard, and published
    atomically, like a new champion: on any failure the current champion stays.
    """
    from django.db import IntegrityError

    from pokewatch_site.errors import InvalidInput, NotFound

    version = ModelVersion.objects.filter(
        registered_name=settings.POKEWATCH_REGISTERED_MODEL,
        registered_version=registered_version,
    ).first()
    if version is None:
        raise NotFound(
            f"no version {registered_version!r} of {settings.POKEWATCH_REGISTERED_MODEL} "
            "is recorded here (see the admin's Model versions)"
        )
    if version.is_champion:
        raise AlreadyChampion(f"{version} is already the champion: nothing to do")
    config = TrainingConfig.from_settings(horizon=version.horizon, rule=version.signal_rule)
    with ml_threads():
        serve(version, plan(), config, progress=progress)
    try:
        return publish_version(version)
    except IntegrityError:
        # Another promotion or training run made a champion between the check above and
        # this commit (one champion at a time is a unique constraint): nothing changed.
        raise InvalidInput(
            f"another champion was published while {version} was being prepared; nothing "
            "changed: see the admin's Model versions and run promote again if needed"
        ) from None


class AlreadyChampion(Exception):
    """``promote`` of the version that is the champion already: there is nothing to do."""
