"""The ZenML pipeline ``training_pipeline``."""

from __future__ import annotations

from pipelines import steps
from pipelines.zenml_env import import_zenml

import_zenml()
from zenml import pipeline  # noqa: E402


@pipeline(enable_cache=False, enable_artifact_metadata=False, enable_step_logs=False)
def training_pipeline(run_id: int = 0) -> None:
    prices = steps.load_prices(run_id)
    features = steps.build_features(run_id, prices)
    candidate = steps.train_candidate(run_id, features)
    backtest = steps.evaluate(run_id, features)
    decision = steps.quality_gate(run_id, backtest)
    version_id, predictions = steps.register_model(run_id, decision, candidate, features, backtest)
    steps.publish(run_id, version_id, predictions)
