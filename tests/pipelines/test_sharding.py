"""The pipeline over shards of cards: same results whatever the sharding, here or on Celery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import sharding
from pipelines.models import ModelVersion, ShardTask, TrainingRun
from pipelines.runs import run_training
from prices.models import Card, Prediction
from tests.support.pipelines import rounded


@pytest.fixture(autouse=True)
def _loose(loose_band_gate: None) -> None:
    """Runs on the six-card slice (tests/pipelines/conftest.py)."""


def predictions_of(version: ModelVersion) -> dict[tuple[str, str], tuple[str, str | None, str]]:
    return {
        (p.card.card_id, p.date.isoformat()): (str(p.fair_price), str(p.fair_low), p.signal)
        for p in Prediction.objects.filter(model_version=version).select_related("card")
    }


def test_plan_cuts_the_active_cards_into_shards(make_card, make_prices) -> None:
    cards = [make_card(card_id=f"c{i}") for i in range(5)]
    make_card(card_id="off", active=False)
    for card in cards:
        make_prices(card, [10, 11, 12])
    plan = sharding.make_plan(cards_per_shard=2, sample_rows=6)
    assert [s.cards for s in plan.shards] == [2, 2, 1]
    assert plan.shards[0].first_pk == cards[0].pk and plan.shards[-1].last_pk == cards[-1].pk
    assert (plan.prices, plan.sample_rate) == (15, 0.4)
    assert plan.last_day is not None


def test_the_sample_is_the_same_rows_whatever_the_sharding() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "card_id": pd.Categorical(np.repeat([f"card-{i}" for i in range(40)], 50)),
            "date": np.tile(pd.date_range("2025-01-01", periods=50).to_numpy(), 40),
            "target": rng.random(2000),
        }
    )
    whole = frame[sharding.sample_mask(frame, 0.25)]
    halves = [
        part[sharding.sample_mask(part, 0.25)]
        for part in (frame.iloc[:1000].copy(), frame.iloc[1000:].copy())
    ]
    assert 0.18 < len(whole) / len(frame) < 0.32
    assert pd.concat(halves).index.equals(whole.index)


def test_a_run_on_many_shards_equals_a_run_on_one(demo_slice, ml_stores: Path, settings) -> None:
    settings.POKEWATCH_SERVING_WINDOW_DAYS = 60
    one = run_training()
    version_one = one.candidate
    assert one.status == TrainingRun.Status.SUCCEEDED and version_one is not None
    expected = predictions_of(version_one)

    settings.POKEWATCH_SHARD_CARDS = 2  # six cards: three shards
    many = run_training()
    assert many.status == TrainingRun.Status.SUCCEEDED
    assert rounded(many.metrics) == rounded(one.metrics)  # the same walk-forward numbers
    assert predictions_of(many.candidate) == expected
    assert set(Prediction.objects.values_list("model_version", flat=True)) == {many.candidate.pk}


def test_a_failing_shard_fails_the_run_and_leaves_no_predictions_behind(
    demo_slice, ml_stores: Path, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.POKEWATCH_SHARD_CARDS = 2
    real = sharding.PHASES["serve"]

    def serve_then_break(shard: sharding.Shard, **payload: object) -> int:
        if shard.index == 2:
            raise RuntimeError("disk full")
        return real(shard, **payload)

    monkeypatch.setitem(sharding.PHASES, "serve", serve_then_break)
    run = run_training()
    assert run.status == TrainingRun.Status.FAILED
    assert "disk full" in run.error
    assert not ModelVersion.objects.filter(is_champion=True).exists()
    assert not Prediction.objects.exists()  # the two shards written before are removed


def test_a_shard_task_delivered_again_after_its_worker_died_is_failed(db) -> None:
    task = ShardTask.objects.create(
        phase="sample", index=0, first_card_pk=1, last_card_pk=2, payload=b"", status="running"
    )
    sharding.execute_shard_task(task.pk)
    task.refresh_from_db()
    assert task.status == "failed" and "died" in task.error


def test_without_a_shard_worker_the_run_says_which_queue_to_serve(
    demo_slice, ml_stores: Path, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.tasks import run_shard

    sent: list[object] = []
    monkeypatch.setattr(run_shard, "apply_async", lambda *a, **k: sent.append(k))  # no worker
    settings.POKEWATCH_SHARDS_ON_CELERY = True
    settings.POKEWATCH_SHARD_QUEUE = "pokewatch-nobody-listens"
    settings.POKEWATCH_SHARD_PICKUP_SECONDS = 1
    run = run_training()
    assert run.status == TrainingRun.Status.FAILED
    assert "start a Celery worker on the queue 'pokewatch-nobody-listens'" in run.error
    assert sent and all(k["queue"] == "pokewatch-nobody-listens" for k in sent)
    assert set(ShardTask.objects.values_list("status", flat=True)) == {"queued"}
    assert Card.objects.count() > 0
