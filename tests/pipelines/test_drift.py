"""Drift (pipelines/drift.py): PSI and KS per feature and of the predictions, the reports of
training runs and of each day's scoring, their MLflow runs, and the Prometheus collector."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.db import DatabaseError
from django.db.models import Max, Min
from django.utils import timezone
from mlflow import MlflowClient
from prometheus_client import CollectorRegistry, generate_latest

from pipelines import drift, training
from pipelines.data import load_price_frame
from pipelines.drift import PREDICTION_COLUMN, DriftCollector, compare, drift_columns, ks, psi
from pipelines.estimators import default_estimators
from pipelines.features import FEATURE_COLUMNS, build_features
from pipelines.gate import GateDecision
from pipelines.models import DriftReport, TrainingRun
from pipelines.publishing import publish
from pipelines.runs import run_training
from pipelines.scoring import score
from prices.ingestion import score_new_prices, upsert_prices
from prices.models import Card, Prediction, PricePoint
from prices.sources.base import PriceRow
from tests.support.drift import feature_frame, shifted

ROWS = 20_000


def _last_day() -> date:
    last: date = Card.objects.filter(active=True).aggregate(last=Max("latest_price_date"))["last"]
    return last


def _card_days(start: date, end: date) -> int:
    """Priced (card, day)s of the active cards from ``start`` to ``end``."""
    prices = PricePoint.objects.filter(card__active=True, date__range=(start, end))
    return prices.values("card", "date").distinct().count()


def _first_day() -> date:
    first: date = PricePoint.objects.filter(card__active=True).aggregate(first=Min("date"))["first"]
    return first


# --- PSI and KS on synthetic frames ------------------------------------------------------


@pytest.mark.parametrize("column", drift_columns())
def test_shifting_one_column_flags_that_column_and_no_other(column: str) -> None:
    reference = feature_frame(ROWS, seed=1)
    current = shifted(feature_frame(ROWS, seed=2), column)

    result = compare(reference, current, threshold=0.2)

    assert result.drifted == [column]
    assert result.features[column]["psi"] > 0.5
    assert result.features[column]["ks"] > 0.2
    others = {k: v for k, v in result.features.items() if k != column}
    assert set(others) == set(drift_columns()) - {column}
    assert max(v["psi"] for v in others.values()) < 0.01
    assert max(v["ks"] for v in others.values()) < 0.03


def test_shifting_nothing_flags_nothing() -> None:
    result = compare(feature_frame(ROWS, seed=1), feature_frame(ROWS, seed=2), threshold=0.2)

    assert result.drifted == []
    assert set(result.features) == set(drift_columns())
    assert set(FEATURE_COLUMNS) < set(result.features) and PREDICTION_COLUMN in result.features
    assert max(v["psi"] for v in result.features.values()) < 0.01
    assert (result.reference_rows, result.current_rows) == (ROWS, ROWS)


def test_more_missing_values_are_drift_even_when_the_values_are_alike() -> None:
    """Returns are NaN until a card has the full lag: many more of them means many new
    cards, which the model sees differently; the PSI has a bin for missing values."""
    result = compare(
        feature_frame(ROWS, seed=1, missing=0.1),
        feature_frame(ROWS, seed=2, missing=0.5),
        threshold=0.2,
    )

    returns = [c for c in drift_columns() if c.startswith("ret_")]
    assert sorted(result.drifted) == sorted(returns)
    assert all(result.features[c]["ks"] < 0.03 for c in returns)  # the finite values match


def test_psi_and_ks_of_degenerate_columns() -> None:
    ones = np.ones(500)
    assert psi(ones, ones) == pytest.approx(0.0) and ks(ones, ones) == 0.0
    missing = np.full(500, np.nan)
    assert psi(missing, missing) == pytest.approx(0.0) and ks(missing, missing) is None
    assert psi(ones, missing) > 1.0  # every value went missing
    assert psi(np.empty(0), ones) is None and psi(ones, np.empty(0)) is None
    # A value that holds many rows is one bin: no split of tied values across bins.
    tied = np.r_[np.ones(900), np.arange(2.0, 102.0)]
    assert psi(tied, tied) == pytest.approx(0.0)
    # Beyond the reference's range: the outer bins take it, the PSI stays finite.
    assert 1.0 < psi(np.arange(1000.0), np.arange(1000.0) + 10_000) < 20.0


def test_the_threshold_is_the_setting_and_psi_must_exceed_it(settings) -> None:
    reference, current = feature_frame(ROWS, seed=1), shifted(feature_frame(ROWS, seed=2), "vol_h")
    index = compare(reference, current).features["vol_h"]["psi"]

    settings.POKEWATCH_DRIFT_PSI_THRESHOLD = index + 0.01
    above = compare(reference, current)
    settings.POKEWATCH_DRIFT_PSI_THRESHOLD = index - 0.01
    below = compare(reference, current)

    assert above.drifted == [] and above.threshold == pytest.approx(index + 0.01)
    assert below.drifted == ["vol_h"]


def test_each_side_is_sampled_to_a_bounded_size_with_a_fixed_seed() -> None:
    reference, current = (
        feature_frame(5_000, seed=1),
        shifted(feature_frame(3_000, seed=2), "ret_h"),
    )

    first = compare(reference, current, max_rows=1_000)
    again = compare(reference, current, max_rows=1_000)
    other_seed = compare(reference, current, max_rows=1_000, seed=7)

    assert (first.reference_rows, first.current_rows) == (1_000, 1_000)
    assert first.features == again.features
    assert first.features != other_seed.features
    assert first.drifted == ["ret_h"] == other_seed.drifted


# --- windows read from the database --------------------------------------------------------


def test_a_window_has_the_features_the_whole_history_gives(demo_slice: pd.DataFrame) -> None:
    last = _last_day()
    start = last - timedelta(days=13)
    ewm = default_estimators()["ewm"]

    window = drift.window_frame(start, last, horizon=30, estimator=ewm)

    whole = build_features(load_price_frame(), 30)
    whole = whole[whole["date"] >= pd.Timestamp(start)].reset_index(drop=True)
    assert len(window) == len(whole) == _card_days(start, last) > 0
    pd.testing.assert_frame_equal(
        window[FEATURE_COLUMNS].reset_index(drop=True), whole[FEATURE_COLUMNS]
    )
    expected = np.log(whole["base_ewm"] / whole["market_price"]).to_numpy()
    np.testing.assert_allclose(window[PREDICTION_COLUMN].to_numpy(), expected)


def test_a_reference_window_keeps_the_card_days_whose_target_was_known(
    demo_slice: pd.DataFrame,
) -> None:
    end = date(2026, 6, 30)

    window = drift.window_frame(date(2025, 4, 22), end, horizon=30, with_target=True)

    assert window["date"].max() <= pd.Timestamp(end - timedelta(days=30))
    assert window["date"].min() == pd.Timestamp(_first_day())
    assert window["card_id"].nunique() == 6


def test_a_large_catalog_loads_a_fixed_sample_of_cards_and_bounded_rows(
    demo_slice: pd.DataFrame,
) -> None:
    last = _last_day()
    start = last - timedelta(days=59)
    # Loading every card would be 6 cards x (60 + 240) days of prices: a budget for ~3.
    small = drift.window_frame(start, last, horizon=30, load_rows=900, max_rows=50)
    again = drift.window_frame(start, last, horizon=30, load_rows=900, max_rows=50)

    assert 0 < small["card_id"].nunique() < 6
    assert len(small) <= 50
    pd.testing.assert_frame_equal(small, again)


# --- a training run's report -------------------------------------------------------------


def test_a_rejected_training_run_records_its_drift_and_logs_it_to_its_mlflow_run(
    demo_slice: pd.DataFrame, ml_stores: Path, settings
) -> None:
    # No band can hold more than every realised median: nothing passes, the run is rejected.
    settings.POKEWATCH_GATE_BAND_COVERAGE_MIN = settings.POKEWATCH_GATE_BAND_COVERAGE_MAX = 1.01
    run = run_training()

    assert run.status == TrainingRun.Status.REJECTED
    assert "check_drift" in run.step_timings
    report = DriftReport.objects.get()
    assert (report.kind, report.training_run, report.model_version) == ("training", run, None)
    last = _last_day()
    assert (report.current_start, report.current_end) == (last - timedelta(days=13), last)
    assert report.current_rows == _card_days(report.current_start, report.current_end)
    assert report.reference_end <= last - timedelta(days=30)
    # The first 4H days of the history, where every card's long windows are cut short by
    # the start of the data, are left out of the reference.
    assert report.reference_start == _first_day() + timedelta(days=4 * 30)
    assert report.reference_rows > 1000 and report.reference_source == "training sample"
    assert set(report.features) == set(drift_columns())
    drifted = [n for n in drift_columns() if report.features[n]["drifted"]]
    assert report.drifted_features == drifted  # in the features' order
    assert report.drifted_count == len(report.drifted_features)
    assert report.threshold == 0.2 and report.mlflow_run_id == run.mlflow_run_id

    logged = MlflowClient().get_run(run.mlflow_run_id).data.metrics
    for name, values in report.features.items():
        assert logged[f"drift_psi_{name}"] == pytest.approx(values["psi"]), name
        assert logged[f"drift_ks_{name}"] == pytest.approx(values["ks"]), name
    assert logged["drift_features_drifted"] == report.drifted_count
    assert "model.mape" in logged  # the same run as the backtest's
    payload = MlflowClient().download_artifacts(run.mlflow_run_id, "drift.json", str(ml_stores))
    saved = json.loads(Path(payload).read_text())
    assert saved["features"] == report.features and saved["kind"] == "training"


def test_if_drift_fails_then_the_training_step_only_warns(
    demo_slice: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """Drift is monitoring, not a gate: the check_drift step goes on to serve and publish."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no prices for the window")

    monkeypatch.setattr(drift, "window_frame", broken)
    config = training.TrainingConfig.from_settings()
    planned = training.plan()
    sample, _ = training.sample_training(planned, config)
    with caplog.at_level(logging.WARNING, logger="pipelines.training"):
        report = training.check_drift(
            planned,
            sample,
            GateDecision(promote=False, estimator=None, reason="test"),
            default_estimators()["last_price"],
            config,
        )

    assert report is None
    assert not DriftReport.objects.exists()
    assert (
        "drift could not be computed" in caplog.text and "no prices for the window" in caplog.text
    )


# --- each day's scoring --------------------------------------------------------------------


@pytest.fixture
def ewm_champion(demo_slice: pd.DataFrame, make_version):
    """A published champion (the ewm baseline: no MLflow model to load) trained on the
    slice's history up to 2026-06-30."""
    champion = make_version(
        "ewm",
        registered_name="pokewatch-fair-value",
        registered_version="",
        data_start=date(2025, 4, 22),
        data_end=date(2026, 6, 30),
    )
    publish(champion, pd.DataFrame(columns=["card_id", "date", "fair_price"]))
    return champion


def _ingest(day: date, price: str | None = None, held_back: pd.DataFrame | None = None):
    """Prices of the active cards on ``day``: the held-back demo prices, or ``price``."""
    if held_back is not None:
        rows = [
            PriceRow(r.card_id, day, Decimal(str(r.market_price))) for r in held_back.itertuples()
        ]
    else:
        rows = [PriceRow(card_id, day, Decimal(price or "100.00")) for card_id in _slice_ids()]
    return score_new_prices(upsert_prices(rows, source="tcgplayer-demo"))


def _slice_ids() -> list[str]:
    return list(Card.objects.filter(active=True).values_list("card_id", flat=True))


def test_scoring_after_an_ingestion_records_the_days_drift_in_mlflow(
    ewm_champion, ml_stores: Path, demo_slice: pd.DataFrame
) -> None:
    new_day = pd.Timestamp(demo_slice["date"].iloc[0]).date()

    result = _ingest(new_day)

    assert result.scored == 6
    report = DriftReport.objects.get()
    assert (report.kind, report.model_version, report.training_run) == (
        "scoring",
        ewm_champion,
        None,
    )
    assert (report.current_start, report.current_end) == (new_day - timedelta(days=13), new_day)
    assert report.reference_start == date(2025, 4, 22) + timedelta(days=4 * 30)  # warm-up
    assert report.reference_end == date(2026, 6, 30) - timedelta(days=30)
    assert report.reference_source == "database"
    assert report.current_rows == _card_days(report.current_start, new_day)
    assert set(report.features) == set(drift_columns())
    # The new day's prices are all 100.00: its predictions moved far from the reference's.
    assert report.features[PREDICTION_COLUMN]["psi"] > 0
    run = MlflowClient().get_run(report.mlflow_run_id)
    experiment = MlflowClient().get_experiment(run.info.experiment_id)
    assert experiment.name == "pokewatch-drift"
    assert run.data.tags["pokewatch.champion"] == ewm_champion.label
    assert run.data.tags["pokewatch.current_end"] == str(new_day)
    assert run.data.metrics["drift_features_drifted"] == report.drifted_count
    for name, values in report.features.items():
        if values["psi"] is not None:
            assert run.data.metrics[f"drift_psi_{name}"] == pytest.approx(values["psi"]), name


def test_one_scoring_report_per_day_replaced_by_a_later_scoring_that_day(
    ewm_champion, ml_stores: Path, demo_slice: pd.DataFrame
) -> None:
    new_day = pd.Timestamp(demo_slice["date"].iloc[0]).date()
    _ingest(new_day, held_back=demo_slice)
    first = DriftReport.objects.get()

    score(since=new_day)  # nothing new to score: the day's report stands
    unchanged = DriftReport.objects.get()
    _ingest(new_day, price="1.00")  # corrected prices: predicted again, drift again
    replaced = DriftReport.objects.get()

    assert unchanged.computed_at == first.computed_at
    assert replaced.pk == first.pk and replaced.computed_at > first.computed_at
    assert replaced.features != first.features
    assert replaced.mlflow_run_id == first.mlflow_run_id  # the day's MLflow run, updated
    logged = MlflowClient().get_run(replaced.mlflow_run_id).data.metrics
    assert logged[f"drift_psi_{PREDICTION_COLUMN}"] == pytest.approx(
        replaced.features[PREDICTION_COLUMN]["psi"]
    )

    _ingest(new_day + timedelta(days=1))
    assert DriftReport.objects.filter(kind="scoring").count() == 2


def test_if_drift_fails_then_scoring_still_succeeds(
    ewm_champion, monkeypatch: pytest.MonkeyPatch, caplog, demo_slice: pd.DataFrame
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("reference unavailable")

    monkeypatch.setattr(drift, "window_frame", broken)
    new_day = pd.Timestamp(demo_slice["date"].iloc[0]).date()
    with caplog.at_level(logging.WARNING, logger="pipelines.drift"):
        result = _ingest(new_day)

    assert result.scored == 6
    assert Prediction.objects.filter(date=new_day).count() == 6
    assert not DriftReport.objects.exists()
    warning = next(r for r in caplog.records if r.name == "pipelines.drift")
    assert warning.levelno == logging.WARNING
    assert "drift of the latest days could not be computed" in warning.getMessage()


def test_if_mlflow_is_unreachable_then_the_report_is_kept_without_a_run(
    ewm_champion, monkeypatch: pytest.MonkeyPatch, caplog, demo_slice: pd.DataFrame
) -> None:
    def unreachable(*args: object, **kwargs: object) -> str:
        raise ConnectionError("mlflow is down")

    monkeypatch.setattr("pipelines.tracking.log_drift_run", unreachable)
    new_day = pd.Timestamp(demo_slice["date"].iloc[0]).date()
    with caplog.at_level(logging.WARNING, logger="pipelines.drift"):
        result = _ingest(new_day)

    assert result.scored == 6
    report = DriftReport.objects.get()
    assert report.mlflow_run_id == "" and report.features
    assert "was not logged to MLflow" in caplog.text


def test_a_champion_trained_on_a_short_history_is_compared_with_all_of_it(
    demo_slice: pd.DataFrame, make_version, ml_stores: Path
) -> None:
    """Leaving the warm-up (4H days) out would leave nothing with a target: it stays in."""
    champion = make_version("ewm", data_start=date(2026, 5, 1), data_end=date(2026, 6, 30))
    publish(champion, pd.DataFrame(columns=["card_id", "date", "fair_price"]))

    _ingest(pd.Timestamp(demo_slice["date"].iloc[0]).date(), held_back=demo_slice)

    report = DriftReport.objects.get()
    assert (report.reference_start, report.reference_end) == (date(2026, 5, 1), date(2026, 5, 31))


def test_a_champion_without_a_data_window_has_no_scoring_drift(
    demo_slice: pd.DataFrame, make_version
) -> None:
    publish(make_version("last_price"), pd.DataFrame(columns=["card_id", "date", "fair_price"]))

    result = _ingest(pd.Timestamp(demo_slice["date"].iloc[0]).date())

    assert result.scored == 6
    assert not DriftReport.objects.exists()


# --- the Prometheus collector ----------------------------------------------------------


def _samples(families) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def test_the_collector_exports_the_latest_report_of_each_kind(make_drift_report, settings) -> None:
    settings.POKEWATCH_DRIFT_PSI_THRESHOLD = 0.25
    now = timezone.now()
    make_drift_report("training", computed_at=now - timedelta(days=2))  # an older one
    newest = make_drift_report("training", computed_at=now - timedelta(hours=1))
    newest.features["ret_1"] = {"psi": 0.5, "ks": 0.3, "drifted": True}
    newest.features[PREDICTION_COLUMN] = {"psi": None, "ks": None, "drifted": False}
    newest.save()
    make_drift_report("scoring", computed_at=now - timedelta(minutes=10))

    samples = _samples(DriftCollector().collect())

    def at(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert at("pokewatch_drift_psi", feature="ret_1", kind="training") == 0.5
    assert at("pokewatch_drift_ks", feature="ret_1", kind="training") == 0.3
    assert at("pokewatch_drift_drifted", feature="ret_1", kind="training") == 1.0
    assert at("pokewatch_drift_drifted", feature="vol_h", kind="scoring") == 1.0
    assert at("pokewatch_drift_drifted", feature="ret_3", kind="scoring") == 0.0
    assert at("pokewatch_drift_psi", feature="vol_h", kind="scoring") == 0.35
    assert at("pokewatch_drift_features_drifted", kind="training") == 2.0
    assert at("pokewatch_drift_threshold") == 0.25
    assert 3590 < at("pokewatch_drift_report_age_seconds", kind="training") < 3700
    assert 590 < at("pokewatch_drift_report_age_seconds", kind="scoring") < 700
    # A column without a value (no rows) has no PSI or KS sample, only "not drifted".
    assert ("pokewatch_drift_psi", (("feature", PREDICTION_COLUMN), ("kind", "training"))) not in (
        samples
    )
    assert at("pokewatch_drift_drifted", feature=PREDICTION_COLUMN, kind="training") == 0.0
    psi_samples = [k for k in samples if k[0] == "pokewatch_drift_psi"]
    assert len(psi_samples) == 2 * len(drift_columns()) - 1  # one value per feature and kind


def test_registering_the_collector_queries_nothing_and_scrapes_read_the_database(
    make_drift_report, django_assert_num_queries
) -> None:
    registry = CollectorRegistry()
    with django_assert_num_queries(0):
        registry.register(DriftCollector())
    empty = generate_latest(registry).decode()
    make_drift_report("scoring")

    with django_assert_num_queries(2):  # the latest report of each kind
        text = generate_latest(registry).decode()

    assert "pokewatch_drift_threshold 0.2" in empty and 'kind="scoring"' not in empty
    assert 'pokewatch_drift_psi{feature="vol_h",kind="scoring"} 0.35' in text
    assert 'pokewatch_drift_drifted{feature="vol_h",kind="scoring"} 1.0' in text


def test_a_database_error_propagates_before_anything_is_yielded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down() -> list[DriftReport]:
        raise DatabaseError("connection refused")

    monkeypatch.setattr(drift, "latest_reports", down)
    scrape = DriftCollector().collect()

    with pytest.raises(DatabaseError, match="connection refused"):
        next(scrape)
