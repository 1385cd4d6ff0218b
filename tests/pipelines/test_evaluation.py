"""Metrics on hand-computed examples, fold construction and the backtest JSON contract."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from pipelines.estimators import Band, FairValueEstimator, default_estimators
from pipelines.evaluation import _feature_frame as _frame
from pipelines.evaluation import (
    backtest_feature_frame,
    finalize_backtest,
    fold_cuts,
    fold_estimators,
    leave_cards_out_backtest,
    tally_folds,
    training_mask,
    training_sample,
    walk_forward_backtest,
)
from pipelines.features import TARGET_COLUMN, build_target
from pipelines.metrics import (
    BASE_KEYS,
    METRIC_KEYS,
    SIGNAL_KEYS,
    add,
    base_rates,
    flip_counts,
    score_predictions,
    tally,
)
from pipelines.signals import SignalConfig
from tests.support.demo import DEMO_CSV
from tests.support.pipelines import rounded

START = pd.Timestamp("2025-01-01")
ESTIMATOR_NAMES = ["model", "last_price", "rolling_mean_3", "rolling_median_7", "ewm"]
SMALL = {"max_iter": 20, "min_samples_leaf": 20}


def random_walks(n_cards: int = 6, n_days: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    log_price = np.log(rng.uniform(10, 300, (n_cards, 1))) + rng.normal(
        0, 0.02, (n_cards, n_days)
    ).cumsum(1)
    keep = rng.random((n_cards, n_days)) > 0.1
    card, day = np.nonzero(keep)
    return pd.DataFrame(
        {
            "card_id": [f"card-{c}" for c in card],
            "date": START + pd.to_timedelta(day, unit="D"),
            "market_price": np.exp(log_price[card, day]),
        }
    )


class SpyModel(FairValueEstimator):
    """Records what it is trained on and predicts the last price."""

    name = "model"

    def __init__(self, log: list[tuple[pd.DataFrame, pd.DataFrame]]) -> None:
        self.log = log
        self.train: pd.DataFrame | None = None

    def fit(self, frame: pd.DataFrame) -> SpyModel:
        self.train = frame.copy()
        return self

    def predict_band(self, frame: pd.DataFrame) -> Band:
        assert self.train is not None
        self.log.append((self.train, frame.copy()))
        price = frame["market_price"].to_numpy(dtype=float)
        return Band(price, price * 0.9, price * 1.1)


def spy_factory(log: list[tuple[pd.DataFrame, pd.DataFrame]]):
    def factory() -> dict[str, FairValueEstimator]:
        est = default_estimators()
        est["model"] = SpyModel(log)
        return est

    return factory


# --- metrics on hand-computed examples -------------------------------------------------


def rows(market: list[float], target: list[float]) -> pd.DataFrame:
    n = len(market)
    return pd.DataFrame(
        {
            "card_id": [f"c{i}" for i in range(n)],
            "date": pd.Timestamp("2025-01-01"),
            "market_price": market,
            TARGET_COLUMN: target,
        }
    )


def test_mape_and_rmse_are_over_rows_with_a_usable_fair_price() -> None:
    got = score_predictions(rows([1.0] * 3, [100.0, 200.0, 50.0]), np.array([110.0, 180.0, np.nan]))
    assert got["mape"] == pytest.approx(0.1)
    assert got["rmse"] == pytest.approx(math.sqrt((100 + 400) / 2))
    assert got["coverage"] == pytest.approx(2 / 3)
    none = score_predictions(rows([1.0], [100.0]), np.array([np.nan]))
    assert (none["mape"], none["rmse"], none["coverage"]) == (None, None, 0.0)
    empty = score_predictions(rows([], []), np.empty(0))
    assert (empty["n"], empty["coverage"], empty["signal_rate"]) == (0, None, None)


def test_flip_counts_compare_each_card_with_its_previous_day() -> None:
    cards = ["b", "a", "a", "b", "a"]
    dates = pd.to_datetime(["2025-01-02", "2025-01-03", "2025-01-01", "2025-01-01", "2025-01-02"])
    signals = ["HOLD", "HOLD", "BUY", "SELL", "BUY"]
    # a: BUY, BUY, HOLD -> 1 change in 2 pairs; b: SELL, HOLD -> 1 change in 1 pair
    assert flip_counts(cards, dates, signals) == (2, 3)
    assert flip_counts(["a"], dates[:1], ["BUY"]) == (0, 0)


def test_tallies_of_separate_rows_add_up_to_the_tally_of_all() -> None:
    frame = hand_frame()
    fair = np.array([125.0, np.nan, 50.0, 100.0, 1.0])
    band = Band(fair, fair * 0.9, fair * 1.1)
    whole = tally(frame, band)
    parts = [
        tally(frame.iloc[i : i + 1], Band(*(v[i : i + 1] for v in band))) for i in range(len(frame))
    ]
    summed = add(parts)
    # everything but the flips, which need a card's rows together
    assert {k: v for k, v in summed.items() if "flips" not in k and "pairs" not in k} == {
        k: v for k, v in whole.items() if "flips" not in k and "pairs" not in k
    }


def hand_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "card_id": ["a", "a", "a", "b", "b"],
            "date": pd.to_datetime(
                ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-01", "2025-01-02"]
            ),
            "market_price": [100.0, 100.0, 100.0, 100.0, 100.0],
            TARGET_COLUMN: [120.0, 100.0, 80.0, 105.0, np.nan],  # last row: not evaluable
        }
    )


def test_score_predictions_on_a_hand_example() -> None:
    fair = np.array([125.0, np.nan, 50.0, 100.0, 1.0])
    low = np.array([112.0, np.nan, 40.0, 101.0, 1.0])
    high = np.array([130.0, np.nan, 70.0, 110.0, 1.0])
    got = score_predictions(hand_frame(), Band(fair, low, high), SignalConfig(rule="deviation"))
    assert list(got) == [*METRIC_KEYS[:7], "calibration", *SIGNAL_KEYS, "rules"]
    assert got["n"] == 4
    assert got["coverage"] == pytest.approx(3 / 4)
    assert got["mape"] == pytest.approx((5 / 120 + 30 / 80 + 5 / 105) / 3)
    assert got["rmse"] == pytest.approx(math.sqrt((25 + 900 + 25) / 3))
    # targets 120 (inside 112..130), 80 (above 40..70), 105 (inside 101..110); row 2: no band
    assert got["band_coverage"] == pytest.approx(2 / 3)
    assert (got["band_below"], got["band_above"]) == (0.0, pytest.approx(1 / 3))
    assert got["calibration"]["observed"] == [0.0, pytest.approx(1 / 3), pytest.approx(2 / 3)]
    # deviation rule: -0.2 BUY, no prediction HOLD, +1.0 SELL, 0.0 HOLD
    assert got["rules"]["deviation"] == {key: got[key] for key in SIGNAL_KEYS}
    assert (got["buy_n"], got["buy_precision"], got["buy_recall"]) == (1, 1.0, 1.0)
    assert (got["buy_hit_rate"], got["buy_mean_return"]) == (1.0, pytest.approx(0.2))
    assert (got["sell_n"], got["sell_precision"], got["sell_hit_rate"]) == (1, 1.0, 1.0)
    assert got["sell_mean_return"] == pytest.approx(-0.2)
    assert got["signal_rate"] == pytest.approx(2 / 4)
    assert got["flip_rate"] == 1.0  # a: BUY -> HOLD -> SELL
    # band rule: 100 < 112 BUY; row 2 HOLD; 100 > 70 SELL; 100 < 101 BUY (rose only 5 %)
    band = got["rules"]["band"]
    assert (band["buy_n"], band["buy_precision"], band["buy_hit_rate"]) == (2, 0.5, 1.0)
    assert band["buy_recall"] == 1.0
    assert band["buy_mean_return"] == pytest.approx((0.2 + 0.05) / 2)
    assert (band["sell_n"], band["sell_hit_rate"]) == (1, 1.0)


def test_base_rates_count_every_scored_day() -> None:
    frame = hand_frame()
    got = base_rates(frame["market_price"], frame[TARGET_COLUMN], SignalConfig())
    assert list(got) == list(BASE_KEYS)
    # returns +0.2, 0, -0.2, +0.05: a BUY would have been right once, a SELL once
    assert got == {
        "n": 4,
        "buy_rate": 0.25,
        "sell_rate": 0.25,
        "up_rate": 0.5,
        "mean_return": pytest.approx(0.0125),
    }


def test_shards_of_cards_give_exactly_the_one_pass_backtest() -> None:
    """What the pipeline does on card shards: one sample for the fold models, then each
    shard's rows tallied on its own; the sum is the backtest of everything at once."""
    prices = random_walks(n_cards=7, n_days=160, seed=4)
    frame = _frame(prices, 7)
    factory = lambda: default_estimators(horizon=7, **SMALL)  # noqa: E731
    whole = backtest_feature_frame(frame, horizon=7, estimators=factory)

    cuts = fold_cuts(frame["date"])
    models = fold_estimators(training_sample(frame), cuts, 7, factory)
    shards = [{"card-0", "card-3", "card-5"}, {"card-1", "card-2"}, {"card-4", "card-6"}]
    tallied = [
        tally_folds(frame[frame["card_id"].isin(cards)], cuts, models, SignalConfig())
        for cards in shards
    ]
    sharded = finalize_backtest(7, cuts, SignalConfig(), *map(list, zip(*tallied, strict=True)))
    assert rounded(sharded) == rounded(whole)  # equal but for float summation order


def test_band_metrics_of_a_band_less_estimator_are_undefined() -> None:
    got = score_predictions(hand_frame(), np.array([100.0] * 5))
    assert got["band_coverage"] is None
    assert got["rules"]["band"]["signal_rate"] == 0.0


# --- folds ------------------------------------------------------------------------------


def test_default_cuts_leave_the_last_30_percent_out_of_sample() -> None:
    dates = START + pd.to_timedelta(np.arange(100), unit="D")
    cuts = fold_cuts(dates, folds=3)
    assert [(c - START).days for c in cuts] == [70, 80, 90]
    assert fold_cuts(dates, folds=1) == [START + pd.Timedelta(days=70)]


def test_explicit_cut_starts_the_first_fold() -> None:
    dates = START + pd.to_timedelta(np.arange(100), unit="D")
    cuts = fold_cuts(dates, cut="2025-03-02", folds=2)
    assert cuts[0] == pd.Timestamp("2025-03-02")
    assert cuts[1] > cuts[0]
    with pytest.raises(ValueError):
        fold_cuts(dates, cut="2030-01-01")


def test_training_mask_requires_the_target_window_to_end_before_the_cut() -> None:
    dates = pd.Series(pd.to_datetime(["2025-01-01", "2025-01-03", "2025-01-04"]))
    assert training_mask(dates, pd.Timestamp("2025-01-11"), 7).tolist() == [True, True, False]


def test_training_targets_never_use_dates_on_or_after_the_cut() -> None:
    prices = random_walks()
    log: list[tuple[pd.DataFrame, pd.DataFrame]] = []
    result = walk_forward_backtest(prices, horizon=7, folds=3, estimators=spy_factory(log))
    cuts = fold_cuts(prices["date"], folds=3)
    assert result["cut"] == cuts[0].strftime("%Y-%m-%d")
    assert len(log) == 3
    for (train, test), cut in zip(log, cuts, strict=True):
        assert (train["date"] + pd.Timedelta(days=7) < cut).all()
        assert (test["date"] >= cut).all()
        # The training targets are exactly what prices before the cut alone give.
        before = build_target(prices[prices["date"] < cut], 7)
        before.index = pd.MultiIndex.from_frame(
            prices[prices["date"] < cut].sort_values(["card_id", "date"])[["card_id", "date"]]
        )
        seen = train.set_index(["card_id", "date"])[TARGET_COLUMN].dropna()
        np.testing.assert_allclose(seen.to_numpy(), before.loc[seen.index].to_numpy())


def test_leave_cards_out_never_scores_a_training_card() -> None:
    prices = random_walks(n_cards=9)
    log: list[tuple[pd.DataFrame, pd.DataFrame]] = []
    result = leave_cards_out_backtest(prices, folds=2, groups=3, estimators=spy_factory(log))
    assert result["groups"] == 3
    assert log
    for train, test in log:
        assert not set(train["card_id"]) & set(test["card_id"])
    scored = pd.concat([test for _, test in log])
    assert not scored.duplicated(["card_id", "date"]).any()


# --- the backtest JSON contract ---------------------------------------------------------


def test_backtest_returns_the_contract_json_shape() -> None:
    result = walk_forward_backtest(
        random_walks(), horizon=7, estimators=lambda: default_estimators(horizon=7, **SMALL)
    )
    assert list(result) == ["horizon", "cut", "signal_rule", "base", "estimators"]
    assert result["horizon"] == 7
    assert result["signal_rule"] == "band"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", result["cut"])
    assert list(result["base"]) == list(BASE_KEYS)
    assert list(result["estimators"]) == ESTIMATOR_NAMES
    for metrics in result["estimators"].values():
        assert set(METRIC_KEYS) | {"calibration", "rules"} == set(metrics)
        assert isinstance(metrics["n"], int) and metrics["n"] > 0
        assert list(metrics["rules"]) == ["deviation", "band"]
        for block in (metrics, *metrics["rules"].values()):
            for key in SIGNAL_KEYS:
                value = block[key]
                assert value is None or isinstance(value, int | float)
                if not key.endswith(("_n", "_return")) and value is not None:
                    assert 0.0 <= value <= 1.0, key
        assert 0.0 <= metrics["band_coverage"] <= 1.0
    text = json.dumps(result, allow_nan=False)  # None -> null, never NaN
    assert json.loads(text) == result


@pytest.mark.parametrize("horizon", [1, 2, 30])
def test_backtest_runs_for_any_horizon(horizon: int) -> None:
    result = walk_forward_backtest(
        random_walks(n_days=200),
        horizon=horizon,
        estimators=lambda: default_estimators(horizon=horizon, **SMALL),
    )
    assert result["horizon"] == horizon
    assert all(m["n"] > 0 for m in result["estimators"].values())


def test_backtest_gives_the_model_the_horizon_it_evaluates() -> None:
    log: list[tuple[pd.DataFrame, pd.DataFrame]] = []
    seen: list[int] = []

    def factory() -> dict[str, FairValueEstimator]:
        est = default_estimators(horizon=5, **SMALL)
        seen.append(est["model"].horizon)  # type: ignore[attr-defined]
        est["model"] = SpyModel(log)
        return est

    walk_forward_backtest(random_walks(n_cards=3, n_days=80), horizon=5, estimators=factory)
    default = walk_forward_backtest.__defaults__  # the default factory follows the horizon
    assert seen and set(seen) == {5} and default is not None


def test_backtest_is_deterministic() -> None:
    prices = random_walks(n_cards=4, n_days=120)
    a = walk_forward_backtest(prices, horizon=5, estimators=lambda: default_estimators(**SMALL))
    b = walk_forward_backtest(prices, horizon=5, estimators=lambda: default_estimators(**SMALL))
    assert a == b
    assert a["horizon"] == 5


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return pd.read_csv(DEMO_CSV)


def test_model_figures_at_30_days_on_the_bundled_data(bundled: pd.DataFrame) -> None:
    """What docs/model.md reports at H = 30: more accurate than the last price, a band the
    gate accepts, BUY signals on a few percent of days that mostly come true and return
    well above the mean. (Issue 10 asked for band coverage 0.75-0.85, a BUY return of 2x
    the mean and SELL held to the same standard: 0.732, 1.9x and a poor SELL here; the
    docs say so.)"""
    result = walk_forward_backtest(bundled, horizon=30)
    model, last = result["estimators"]["model"], result["estimators"]["last_price"]
    assert model["mape"] < last["mape"]
    assert 0.70 <= model["band_coverage"] <= 0.90  # the quality gate's range
    assert 0.01 <= model["buy_n"] / model["n"] <= 0.25
    assert model["buy_hit_rate"] >= 0.75
    assert model["buy_mean_return"] >= 1.5 * result["base"]["mean_return"]
    assert model["coverage"] == 1.0
    assert result["signal_rule"] == "band"
    assert model["rules"]["deviation"]["signal_rate"] < 0.01  # why band is the default


def test_model_beats_every_baseline_at_7_days_on_the_bundled_data(bundled: pd.DataFrame) -> None:
    result = walk_forward_backtest(bundled, horizon=7)
    mapes = {name: m["mape"] for name, m in result["estimators"].items()}
    assert all(mapes["model"] < mapes[name] for name in ESTIMATOR_NAMES[1:]), mapes
