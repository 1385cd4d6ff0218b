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
        """Serves any PokeWatch estimator: feature frame in, fair prices out."""

        def __init__(self, estimator: Any) -> None:
            self.estimator = estimator

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return self.estimator.predict(model_input)

    return FairValueModel


def log_training_run(
    *,
    params: dict[str, Any],
    backtest: dict[str, Any],
    estimator: Any,
    predictions: pd.DataFrame,
    tags: dict[str, str] | None = None,
    input_example: pd.DataFrame | None = None,
) -> tuple[str, str]:
    """Log one training run: parameters, every estimator's metrics, plots and the model.

    Returns the MLflow run id and the logged model's URI (what ``register`` takes).
    """
    import mlflow
    from mlflow.models import infer_signature

    configure()
    with mlflow.start_run(tags=tags) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        metrics = {
            f"{name}.{key}": float(value)
            for name, block in backtest["estimators"].items()
            for key, value in block.items()
            if value is not None
        }
        mlflow.log_metrics(metrics)
        mlflow.log_dict(backtest, "backtest.json")
        with tempfile.TemporaryDirectory() as tmp:
            for path in _plots(predictions, Path(tmp)):
                mlflow.log_artifact(str(path), artifact_path="plots")
        example = input_example if input_example is not None else predictions.head(0)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_pyfunc_class()(estimator),
            signature=infer_signature(example, estimator.predict(example)),
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


def _plots(predictions: pd.DataFrame, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    if predictions.empty:
        return paths
    # Fair value vs market for the three cards with the most history.
    top = predictions["card_id"].value_counts().index[:3]
    fig, axes = plt.subplots(len(top), 1, figsize=(9, 3 * len(top)), squeeze=False)
    for ax, card in zip(axes[:, 0], top, strict=True):
        rows = predictions[predictions["card_id"] == card]
        ax.plot(rows["date"], rows["market_price"], label="market", linewidth=1)
        ax.plot(rows["date"], rows["fair_price"], label="fair value", linewidth=1)
        ax.set_title(str(card), fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, folder / "fair_vs_market.png", plt))

    if "target" in predictions:
        known = predictions.dropna(subset=["target"])
        error = (known["fair_price"] - known["target"]) / known["target"]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(error.clip(-0.5, 0.5), bins=50)
        ax.set_title(f"relative error of fair value vs realised target (n={len(error):,})")
        paths.append(_save(fig, folder / "error_distribution.png", plt))

    fig, ax = plt.subplots(figsize=(5, 4))
    predictions["signal"].value_counts().reindex(["BUY", "HOLD", "SELL"], fill_value=0).plot.bar(
        ax=ax
    )
    ax.set_title("signal distribution")
    paths.append(_save(fig, folder / "signal_distribution.png", plt))
    return paths


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
