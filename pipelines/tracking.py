"""MLflow glue: where runs and models live, what a training run logs, the champion alias."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings

logger = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
#: Experiment of the scoring drift reports (a training run's report goes to its own run).
DRIFT_EXPERIMENT = "pokewatch-drift"
_configured: str | None = None


def configure() -> str:
    """Point MLflow at the configured tracking store; create the experiment if needed."""
    global _configured
    import mlflow

    uri = settings.MLFLOW_TRACKING_URI
    if _configured != uri:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        name = settings.MLFLOW_EXPERIMENT_NAME
        if mlflow.get_experiment_by_name(name) is None:
            mlflow.create_experiment(name, artifact_location=settings.MLFLOW_ARTIFACT_ROOT)
        mlflow.set_experiment(name)
        _configured = uri
    return uri


def _pyfunc_class() -> type:
    import mlflow.pyfunc

    class FairValueModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
        """Serves any PokeWatch estimator: feature frame in, fair price and band out."""

        def __init__(self, estimator: Any) -> None:
            self.estimator = estimator

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return band_frame(self.estimator, model_input)

    return FairValueModel


def band_frame(estimator: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``fair_price, fair_low, fair_high`` of an estimator on a feature frame."""
    band = estimator.predict_band(frame)
    return pd.DataFrame({"fair_price": band.fair, "fair_low": band.low, "fair_high": band.high})


def flat_metrics(backtest: dict[str, Any]) -> dict[str, float]:
    """Every number of a backtest as ``estimator.metric`` / ``estimator.rule.metric``."""
    out: dict[str, float] = {}

    def add(key: str, value: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)

    for name, block in backtest["estimators"].items():
        for key, value in block.items():
            if key == "rules":
                for rule, metrics in value.items():
                    for metric, number in metrics.items():
                        add(f"{name}.{rule}.{metric}", number)
            elif key == "calibration":
                for level, seen in zip(value["levels"], value["observed"], strict=True):
                    add(f"{name}.share_below_q{round(level * 100):02d}", seen)
            else:
                add(f"{name}.{key}", value)
    for key, value in backtest.get("base", {}).items():
        add(f"base.{key}", value)
    return out


def log_training_run(
    *,
    params: dict[str, Any],
    backtest: dict[str, Any],
    estimator: Any,
    input_example: pd.DataFrame,
    tags: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Log one training run: parameters, every estimator's metrics, the calibration plot
    and the model (the serving plots follow once its predictions exist:
    :func:`log_serving_plots`).

    Returns the MLflow run id and the logged model's URI (what ``register`` takes).
    """
    import mlflow
    from mlflow.models import infer_signature

    configure()
    with mlflow.start_run(tags=tags) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics(flat_metrics(backtest))
        mlflow.log_dict(backtest, "backtest.json")
        with tempfile.TemporaryDirectory() as tmp:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            path = _save(_calibration_figure(backtest, plt), Path(tmp) / "calibration.png", plt)
            mlflow.log_artifact(str(path), artifact_path="plots")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_pyfunc_class()(estimator),
            signature=infer_signature(input_example, band_frame(estimator, input_example)),
            pip_requirements=["scikit-learn", "pandas", "numpy"],
        )
        return str(run.info.run_id), str(info.model_uri)


def register(model_uri: str) -> str:
    """Register a logged model under the configured name; returns the new version."""
    import mlflow

    configure()
    version = mlflow.register_model(model_uri, settings.POKEWATCH_REGISTERED_MODEL)
    return str(version.version)


def set_champion_alias(version: str) -> None:
    from mlflow import MlflowClient

    configure()
    MlflowClient().set_registered_model_alias(
        settings.POKEWATCH_REGISTERED_MODEL, CHAMPION_ALIAS, version
    )


def load_estimator(registered_name: str, version: str) -> Any:
    import mlflow.pyfunc

    configure()
    model = mlflow.pyfunc.load_model(f"models:/{registered_name}/{version}")
    return model.unwrap_python_model().estimator


def log_serving_plots(version: Any) -> None:
    """Add to the version's MLflow run: fair value and band against the market for the
    three cards with the most predictions, and the signals' distribution (from the
    database, where the shards wrote them). A failure is logged, never fatal."""
    try:
        _log_serving_plots(version)
    except Exception:  # plots are for people; the predictions are what matters
        logger.exception("could not log the serving plots of %s", version)


def _log_serving_plots(version: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from django.db.models import Count
    from mlflow import MlflowClient

    from prices.models import Prediction

    predictions = Prediction.objects.filter(model_version=version)
    top = list(
        predictions.values("card__card_id")
        .annotate(n=Count("pk"))
        .order_by("-n", "card__card_id")
        .values_list("card__card_id", flat=True)[:3]
    )
    if not top:
        return
    configure()
    client = MlflowClient()
    fig, axes = plt.subplots(len(top), 1, figsize=(9, 3 * len(top)), squeeze=False)
    for ax, card in zip(axes[:, 0], top, strict=True):
        rows = pd.DataFrame.from_records(
            predictions.filter(card__card_id=card)
            .order_by("date")
            .values("date", "market_price", "fair_price", "fair_low", "fair_high")
        ).astype({"market_price": float, "fair_price": float})
        if rows["fair_low"].notna().any():
            ax.fill_between(
                rows["date"],
                rows["fair_low"].astype(float),
                rows["fair_high"].astype(float),
                alpha=0.2,
                label="band",
            )
        ax.plot(rows["date"], rows["market_price"], label="market", linewidth=1)
        ax.plot(rows["date"], rows["fair_price"], label="fair value", linewidth=1)
        ax.set_title(str(card), fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    counts = dict(predictions.values_list("signal").annotate(n=Count("pk")))
    with tempfile.TemporaryDirectory() as tmp:
        client.log_artifact(
            version.mlflow_run_id, str(_save(fig, Path(tmp) / "fair_vs_market.png", plt)), "plots"
        )
        fig, ax = plt.subplots(figsize=(5, 4))
        labels = ["BUY", "HOLD", "SELL"]
        ax.bar(labels, [counts.get(label, 0) for label in labels])
        ax.set_title("signals served (the serving window)")
        path = _save(fig, Path(tmp) / "signal_distribution.png", plt)
        client.log_artifact(version.mlflow_run_id, str(path), "plots")


def log_drift(run_id: str, report: dict[str, Any], metrics: dict[str, float]) -> None:
    """Add a drift report (pipelines/drift.py) to an MLflow run: its metrics
    (``drift_psi_<feature>``, ``drift_ks_<feature>``, ``drift_features_drifted``) and
    ``drift.json``."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    configure()
    client = MlflowClient()
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in sorted(metrics.items())])
    client.log_dict(run_id, report, "drift.json")


def log_drift_run(
    run_id: str,
    report: dict[str, Any],
    metrics: dict[str, float],
    *,
    tags: dict[str, str],
    name: str,
) -> str:
    """A scoring drift report in its own run of the ``pokewatch-drift`` experiment: a new
    run, or ``run_id`` again when the report replaces that day's. Returns the run id."""
    from mlflow import MlflowClient

    configure()
    client = MlflowClient()
    if not run_id:
        experiment = client.get_experiment_by_name(DRIFT_EXPERIMENT)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(
                DRIFT_EXPERIMENT,
                artifact_location=f"{settings.MLFLOW_ARTIFACT_ROOT.rstrip('/')}/{DRIFT_EXPERIMENT}",
            )
        )
        run_id = str(client.create_run(experiment_id, tags=tags, run_name=name).info.run_id)
    else:
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
    log_drift(run_id, report, metrics)
    client.set_terminated(run_id)
    return run_id


def _calibration_figure(backtest: dict[str, Any], plt: Any) -> Any:
    """Walk-forward calibration: observed share below each quantile, and band coverage."""
    estimators = backtest["estimators"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--", label="ideal")
    for name, block in estimators.items():
        calibration = block.get("calibration") or {}
        points = [
            (level, seen)
            for level, seen in zip(
                calibration.get("levels", []), calibration.get("observed", []), strict=True
            )
            if seen is not None
        ]
        if points:
            left.plot(*zip(*points, strict=True), marker="o", label=name)
    left.set_xlabel("nominal level (low, fair, high)")
    left.set_ylabel("share of realised medians below it")
    left.set_title(f"calibration, H = {backtest.get('horizon')} days (walk-forward)")
    left.legend(fontsize=8)
    names = list(estimators)
    bottom = [0.0] * len(names)
    for key, colour in (
        ("band_below", "#c0392b"),
        ("band_coverage", "#27ae60"),
        ("band_above", "#2980b9"),
    ):
        values = [estimators[n].get(key) or 0.0 for n in names]
        right.bar(names, values, bottom=bottom, color=colour, label=key)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.axhline(0.1, color="black", linewidth=0.8)
    right.axhline(0.9, color="black", linewidth=0.8)
    right.set_title("realised median below / inside / above the band")
    right.tick_params(axis="x", labelrotation=30, labelsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
