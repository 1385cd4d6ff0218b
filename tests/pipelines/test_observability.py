"""State metrics of the training side on /metrics: runs, the failure streak, the last run's
steps and cards, the champion's quality and age; and the step histogram and cards counter
the pipeline moves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pipelines.models import TrainingRun
from pipelines.progress import StepRecord, step_timer
from tests.support.metrics import scrape, value

Status = TrainingRun.Status


def _run(status: str, minutes_ago: int, **fields: object) -> TrainingRun:
    run = TrainingRun.objects.create(status=status, **fields)
    TrainingRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return run


def test_a_failed_run_moves_failures_and_the_streak(db, metrics_token) -> None:
    before = scrape(Client())
    _run(Status.SUCCEEDED, 300)
    _run(Status.FAILED, 200)
    middle = scrape(Client())
    _run(Status.FAILED, 100)
    _run(Status.SKIPPED, 50)  # a skipped trigger neither breaks nor extends the streak
    after = scrape(Client())
    runs = "pokewatch_training_runs_total"
    assert value(middle, runs, status="failed") - value(before, runs, status="failed") == 1
    assert value(after, runs, status="failed") - value(middle, runs, status="failed") == 1
    assert value(after, runs, status="succeeded") == 1
    assert value(after, runs, status="queued") == 0  # every status exported
    streak = "pokewatch_training_consecutive_failures"
    assert (value(middle, streak), value(after, streak)) == (1, 2)
    _run(Status.REJECTED, 10)  # a rejected candidate is a run that worked
    assert value(scrape(Client()), streak) == 0


def test_the_last_finished_runs_steps_and_cards_are_exported(db, metrics_token) -> None:
    _run(Status.SUCCEEDED, 100, step_timings={"serve": 99.0}, cards_scored=5)
    _run(
        Status.SUCCEEDED,
        10,
        step_timings={"plan_shards": 1.5, "serve": 12.25},
        cards_scored=42,
        finished_at=timezone.now(),
    )
    _run(Status.RUNNING, 1, step_timings={"plan_shards": 3.0})  # not finished: not "last"
    samples = scrape(Client())
    steps = "pokewatch_training_last_run_step_seconds"
    assert value(samples, steps, step="plan_shards") == 1.5
    assert value(samples, steps, step="serve") == 12.25
    assert value(samples, "pokewatch_training_last_run_cards_scored") == 42
    assert value(samples, "pokewatch_training_last_run_timestamp_seconds") == pytest.approx(
        timezone.now().timestamp(), abs=60
    )


def test_the_champions_quality_and_age_are_exported(make_version, metrics_token) -> None:
    make_version(
        "model",
        is_champion=True,
        registered_version="7",
        promoted_at=timezone.now() - timedelta(days=4),
        metrics={"mape": 0.12, "band_coverage": 0.8, "signal_rate": 0.05, "rmse": 3.0},
    )
    samples = scrape(Client())
    assert value(samples, "pokewatch_champion_mape") == 0.12
    assert value(samples, "pokewatch_champion_band_coverage") == 0.8
    assert value(samples, "pokewatch_champion_signal_rate") == 0.05
    assert value(samples, "pokewatch_champion_age_seconds") == pytest.approx(4 * 86400, abs=60)
    info = [labels for name, labels in samples if name == "pokewatch_champion_info"]
    assert [dict(labels)["estimator"] for labels in info] == ["model"]


def test_without_a_champion_no_quality_is_made_up(db, metrics_token) -> None:
    samples = scrape(Client())
    assert not any(name.startswith("pokewatch_champion_") for name, _ in samples)


def test_each_step_observes_its_duration(db, metrics_token) -> None:
    name = "pokewatch_training_step_seconds_count"
    before = value(scrape(Client()), name, step="evaluate")
    with step_timer(0, "evaluate"):
        pass
    assert value(scrape(Client()), name, step="evaluate") - before == 1


def test_cards_scored_by_a_run_are_recorded_and_counted(db, metrics_token) -> None:
    run = _run(Status.RUNNING, 1)
    name = "pokewatch_cards_scored_total"
    before = value(scrape(Client()), name, trigger="training")
    StepRecord(run.pk).scored(17)
    assert TrainingRun.objects.get(pk=run.pk).cards_scored == 17
    assert value(scrape(Client()), name, trigger="training") - before == 17


def test_cards_scored_after_ingestion_are_counted(
    make_card, make_prices, make_version, metrics_token
):
    from datetime import date

    import pandas as pd

    from pipelines.publishing import publish
    from pipelines.scoring import score

    for card_id in ("a", "b"):
        make_prices(
            make_card(card_id=card_id), [10.0 + i % 3 for i in range(20)], start=date(2026, 1, 1)
        )
    publish(make_version("last_price"), pd.DataFrame(columns=["card_id", "date", "fair_price"]))
    name = "pokewatch_cards_scored_total"
    before = value(scrape(Client()), name, trigger="ingestion")
    assert score().scored > 0
    assert value(scrape(Client()), name, trigger="ingestion") - before == 2  # cards, not days
    assert score().scored == 0  # nothing new: nothing counted
    assert value(scrape(Client()), name, trigger="ingestion") - before == 2
