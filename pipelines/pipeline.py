"""The ZenML pipeline ``training_pipeline``."""

from __future__ import annotations

from pipelines import steps
from pipelines.zenml_env import import_zenml

import_zenml()
from zenml import pipeline  # noqa: E402


@pipeline(enable_cache=False, enable_artifact_metadata=False, enable_step_logs=False)
def training_pipeline(run_id: int = 0) -> None:
    plan = steps.plan_shards(run_id)
    sample, days = steps.sample_training(run_id, plan)
    candidate = steps.train_candidate(run_id, sample)
    backtest = steps.evaluate(run_id, plan, sample, days)
    decision = steps.quality_gate(run_id, backtest)
    version_id = steps.register_model(run_id, decision, candidate, sample, backtest)
    steps.check_drift(run_id, plan, sample, candidate, decision, version_id)
    served = steps.serve(run_id, plan, version_id, after="check_drift")
    steps.publish(run_id, version_id, served)
