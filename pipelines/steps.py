"""ZenML steps: thin wrappers that time themselves and call pipelines.training.

The frames that travel between steps are small whatever the catalog: the plan (shards of
cards), the training sample (~1M rows at most) and the backtest's JSON. The prices
themselves are read shard by shard inside the steps (pipelines/sharding.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd

from pipelines import training
from pipelines.models import ModelVersion
from pipelines.progress import reporter_of, step_timer
from pipelines.sharding import Plan
from pipelines.zenml_env import import_zenml

import_zenml()
from zenml import step  # noqa: E402


def _config() -> training.TrainingConfig:
    return training.TrainingConfig.from_settings()


# enable_cache=False everywhere: the steps read the database, which ZenML cannot see, so a
# cached result could be stale, and every later step depends on them.
# Artifacts are still stored, but ZenML is not asked to describe() frames for metadata
# and visualizations: that cost more memory than the steps themselves.
pipeline_step = step(
    enable_cache=False, enable_artifact_metadata=False, enable_artifact_visualization=False
)


@pipeline_step
def plan_shards(run_id: int) -> Annotated[Plan, "plan"]:
    with step_timer(run_id, "plan_shards"):
        planned = training.plan()
        reporter_of()(
            f"  {planned.prices:,} prices of {sum(s.cards for s in planned.shards):,} cards "
            f"in {len(planned.shards)} shard(s); training sample rate {planned.sample_rate:.4f}"
        )
        return planned


@pipeline_step
def sample_training(
    run_id: int, plan: Plan
) -> tuple[Annotated[pd.DataFrame, "sample"], Annotated[list[str], "days"]]:
    with step_timer(run_id, "sample_training"):
        sample, days = training.sample_training(
            plan, _config(), run_id=run_id, progress=reporter_of()
        )
        return sample, days  # a literal tuple: how ZenML knows there are two artifacts


@pipeline_step
def train_candidate(run_id: int, sample: pd.DataFrame) -> Annotated[Any, "candidate"]:
    with step_timer(run_id, "train_candidate"):
        return training.train_candidate(sample, _config())


@pipeline_step
def evaluate(
    run_id: int, plan: Plan, sample: pd.DataFrame, days: list[str]
) -> Annotated[dict, "backtest"]:
    with step_timer(run_id, "evaluate"):
        return training.evaluate(
            plan, sample, days, _config(), run_id=run_id, progress=reporter_of()
        )


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
    run_id: int, decision: dict, candidate: Any, sample: pd.DataFrame, backtest: dict
) -> Annotated[int, "model_version_id"]:
    with step_timer(run_id, "register_model") as record:
        mlflow_run_id, version = training.register(
            training.GateDecision(**decision),
            candidate,
            sample,
            backtest,
            _config(),
            run_tags={"pokewatch.training_run": str(run_id)},
        )
        record.registered(mlflow_run_id, version)
        return version.pk if version else 0


@pipeline_step
def check_drift(
    run_id: int,
    plan: Plan,
    sample: pd.DataFrame,
    candidate: Any,
    decision: dict,
    model_version_id: int,
) -> Annotated[int, "drift_report_id"]:
    with step_timer(run_id, "check_drift"):
        version = ModelVersion.objects.filter(pk=model_version_id).first()
        report = training.check_drift(
            plan,
            sample,
            training.GateDecision(**decision),
            candidate,
            _config(),
            run_id=run_id,
            version=version,
        )
        if report is not None:
            reporter_of()(
                f"  drift: {report.drifted_count} of {len(report.features)} drifted"
                + (f" ({', '.join(report.drifted_features)})" if report.drifted_features else "")
            )
        return report.pk if report is not None else 0


@pipeline_step
def serve(run_id: int, plan: Plan, model_version_id: int) -> Annotated[int, "served"]:
    with step_timer(run_id, "serve") as record:
        if not model_version_id:
            return 0
        version = ModelVersion.objects.get(pk=model_version_id)
        written = training.serve(version, plan, _config(), run_id=run_id, progress=reporter_of())
        record.scored(training.cards_scored(version, plan))
        return written


@pipeline_step
def publish(run_id: int, model_version_id: int, served: int) -> Annotated[int, "published"]:
    with step_timer(run_id, "publish"):
        if not model_version_id:
            return 0
        version = ModelVersion.objects.get(pk=model_version_id)
        return training.publish_version(version).written
