"""ZenML steps: thin wrappers that time themselves and call pipelines.training."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd

from pipelines import training
from pipelines.models import ModelVersion
from pipelines.progress import step_timer
from pipelines.zenml_env import import_zenml

import_zenml()
from zenml import step  # noqa: E402


def _config() -> training.TrainingConfig:
    return training.TrainingConfig.from_settings()


# enable_cache=False everywhere: the load step reads the database, which ZenML cannot
# see, so a cached result could be stale, and every later step depends on it.
# Artifacts are still stored, but ZenML is not asked to describe() multi-million-row
# frames for metadata and visualizations: that cost more memory than the steps themselves.
pipeline_step = step(
    enable_cache=False, enable_artifact_metadata=False, enable_artifact_visualization=False
)


@pipeline_step
def load_prices(run_id: int) -> Annotated[pd.DataFrame, "prices"]:
    with step_timer(run_id, "load_prices"):
        return training.load_prices()


@pipeline_step
def build_features(run_id: int, prices: pd.DataFrame) -> Annotated[pd.DataFrame, "features"]:
    with step_timer(run_id, "build_features"):
        return training.make_feature_frame(prices, _config())


@pipeline_step
def train_candidate(run_id: int, features: pd.DataFrame) -> Annotated[Any, "candidate"]:
    with step_timer(run_id, "train_candidate"):
        return training.train_candidate(features, _config())


@pipeline_step
def evaluate(run_id: int, features: pd.DataFrame) -> Annotated[dict, "backtest"]:
    with step_timer(run_id, "evaluate"):
        return training.evaluate(features, _config())


@pipeline_step
def quality_gate(run_id: int, backtest: dict) -> Annotated[dict, "decision"]:
    with step_timer(run_id, "quality_gate") as record:
        decision = training.apply_gate(backtest, _config())
        record.gate(decision, backtest)
        return {
            "promote": decision.promote,
            "estimator": decision.estimator,
            "reason": decision.reason,
        }


@pipeline_step
def register_model(
    run_id: int, decision: dict, candidate: Any, features: pd.DataFrame, backtest: dict
) -> tuple[Annotated[int, "model_version_id"], Annotated[pd.DataFrame, "predictions"]]:
    with step_timer(run_id, "register_model") as record:
        mlflow_run_id, version, predictions = training.register(
            training.GateDecision(**decision),
            candidate,
            features,
            backtest,
            _config(),
            run_tags={"pokewatch.training_run": str(run_id)},
        )
        record.registered(mlflow_run_id, version)
        return (version.pk if version else 0), predictions


@pipeline_step
def publish(
    run_id: int, model_version_id: int, predictions: pd.DataFrame
) -> Annotated[int, "published"]:
    with step_timer(run_id, "publish"):
        if not model_version_id:
            return 0
        version = ModelVersion.objects.get(pk=model_version_id)
        return training.publish_version(version, predictions).written
