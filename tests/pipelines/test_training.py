"""Real end-to-end runs of the ZenML training pipeline on a slice of the demo history."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Max
from mlflow import MlflowClient

from pipelines import training
from pipelines.data import load_price_frame
from pipelines.features import build_features
from pipelines.models import DriftReport, ModelVersion, TrainingRun
from pipelines.runs import run_training
from prices.csv_import import import_price_file
from prices.models import Prediction, PricePoint


@pytest.fixture(autouse=True)
def _loose(loose_band_gate: None) -> None:
    """Every run here is on the six-card slice (tests/pipelines/conftest.py)."""


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_pipeline_promotes_then_repromotes_and_new_days_get_signals(
    demo_slice: pd.DataFrame, ml_stores: Path, tmp_path: Path, settings
) -> None:
    settings.POKEWATCH_SERVING_WINDOW_DAYS = 120
    root = logging.getLogger()
    handlers_before = list(root.handlers)
    output = run("run_pipeline")
    assert root.handlers == handlers_before  # ZenML did not take over the root logger

    first = TrainingRun.objects.get()
    champion = ModelVersion.objects.get(is_champion=True)
    assert first.status == TrainingRun.Status.SUCCEEDED and first.promoted
    assert "[evaluate] finished" in output and "promoted" in output
    assert set(first.step_timings) == {
        "plan_shards",
        "sample_training",
        "train_candidate",
        "evaluate",
        "quality_gate",
        "register_model",
        "check_drift",
        "serve",
        "publish",
    }
    assert first.mlflow_run_id and champion.registered_version
    alias = MlflowClient().get_model_version_by_alias(champion.registered_name, "champion")
    assert str(alias.version) == champion.registered_version
    assert set(first.metrics["estimators"]) >= {"model", "last_price", "ewm"}
    # MLflow has every backtest number (per rule too) and the calibration plot.
    logged = MlflowClient().get_run(first.mlflow_run_id)
    for key in ("model.band_coverage", "model.band.buy_hit_rate", "model.deviation.signal_rate"):
        assert key in logged.data.metrics, key
    assert "base.mean_return" in logged.data.metrics
    assert "model.share_below_q10" in logged.data.metrics
    plots = {a.path for a in MlflowClient().list_artifacts(first.mlflow_run_id, "plots")}
    assert {"plots/calibration.png", "plots/fair_vs_market.png"} <= plots
    assert logged.data.params["signal_rule"] == "band"
    # Its drift report (tests/pipelines/test_drift.py) names the version it promoted.
    report = first.drift_reports.get()
    assert (report.kind, report.model_version) == ("training", champion)
    assert "drift_features_drifted" in logged.data.metrics

    # Exactly one champion's predictions, for every active card's prices in the window.
    latest = PricePoint.objects.aggregate(m=Max("date"))["m"]
    window_start = latest - timedelta(days=119)
    priced = set(
        PricePoint.objects.filter(date__gte=window_start, card__active=True).values_list(
            "card__card_id", "date"
        )
    )
    predicted = set(Prediction.objects.values_list("card__card_id", "date"))
    assert predicted == priced
    assert set(Prediction.objects.values_list("model_version", flat=True)) == {champion.pk}

    # Same data again: the same decision, deterministically.
    run_training()
    second = TrainingRun.objects.latest("created_at")
    assert second.status == first.status
    assert second.metrics == first.metrics
    assert ModelVersion.objects.filter(is_champion=True).count() == 1

    # A new day of prices gets predictions at import, without retraining.
    path = tmp_path / "new_day.csv"
    demo_slice.to_csv(path, index=False)
    runs_before = TrainingRun.objects.count()
    result = import_price_file(path, source="tcgplayer-demo")
    new_day = pd.Timestamp(demo_slice["date"].iloc[0]).date()
    assert result.scored == len(demo_slice)
    assert Prediction.objects.filter(date=new_day).count() == len(demo_slice)
    assert TrainingRun.objects.count() == runs_before
    # ... and the day's drift against the champion's training window.
    scoring = DriftReport.objects.get(kind="scoring")
    assert scoring.model_version == ModelVersion.objects.get(is_champion=True)
    assert scoring.current_end == new_day and scoring.mlflow_run_id and scoring.features

    # Scoring a day incrementally gives what computing it from the whole history gives.
    champion = ModelVersion.objects.get(is_champion=True)
    prices = load_price_frame()
    frame = build_features(prices, champion.horizon)
    frame = frame[frame["date"] == pd.Timestamp(new_day)]
    band = _champion_estimator(champion).predict_band(frame)
    stored = {
        (p.card.card_id, float(p.fair_price))
        for p in Prediction.objects.filter(date=new_day).select_related("card")
    }
    assert stored == {
        (card_id, round(fair, 2)) for card_id, fair in zip(frame["card_id"], band.fair, strict=True)
    }


def test_promote_rolls_back_to_an_earlier_version(
    demo_slice: pd.DataFrame, ml_stores: Path, settings
) -> None:
    settings.POKEWATCH_SERVING_WINDOW_DAYS = 60
    run_training()
    first = ModelVersion.objects.get(is_champion=True)
    first_predictions = {
        (p.card_id, p.date): p.fair_price for p in Prediction.objects.filter(model_version=first)
    }
    run_training()
    second = ModelVersion.objects.get(is_champion=True)
    assert second != first

    output = run("promote", first.registered_version)

    assert f"{first} is the champion again" in output
    assert ModelVersion.objects.get(is_champion=True) == first
    assert set(Prediction.objects.values_list("model_version", flat=True)) == {first.pk}
    again = {
        (p.card_id, p.date): p.fair_price for p in Prediction.objects.filter(model_version=first)
    }
    assert again == first_predictions  # the same model on the same prices
    alias = MlflowClient().get_model_version_by_alias(first.registered_name, "champion")
    assert str(alias.version) == first.registered_version
    with pytest.raises(CommandError, match="no version '999'"):
        run("promote", "999")


def _champion_estimator(champion: ModelVersion):
    from pipelines.scoring import estimator_for

    return estimator_for(champion)


def test_if_a_step_fails_then_run_is_failed_and_champion_unchanged(
    demo_slice: pd.DataFrame, ml_stores: Path, monkeypatch: pytest.MonkeyPatch, make_version
) -> None:
    from pipelines.publishing import publish

    old = make_version("last_price")
    publish(old, pd.DataFrame(columns=["card_id", "date", "market_price", "fair_price"]))
    before = Prediction.objects.count()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("evaluation exploded")

    monkeypatch.setattr(training, "evaluate", broken)
    with pytest.raises(CommandError, match="failed: evaluate: RuntimeError: evaluation exploded"):
        run("run_pipeline")

    failed = TrainingRun.objects.get()
    assert failed.status == TrainingRun.Status.FAILED
    assert "evaluation exploded" in failed.error and failed.finished_at
    assert ModelVersion.objects.get(is_champion=True) == old
    assert Prediction.objects.count() == before
