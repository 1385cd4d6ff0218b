"""Metrics on hand-computed examples, fold construction and the backtest JSON contract."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.estimators import FairValueEstimator, default_estimators
from pipelines.evaluation import (
    METRIC_KEYS,
    coverage,
    flip_rate,
    fold_cuts,
    leave_cards_out_backtest,
    mape,
    precision_recall,
    realised_moves,
    rmse,
    score_predictions,
    signal_rate,
    training_mask,
    walk_forward_backtest,
)
from pipelines.features import TARGET_COLUMN, build_target

DEMO_CSV = (
    Path(__file__).resolve().parents[2] / "config" / "demo" / "tcgplayer_market_prices_dev.csv"
)
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

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        assert self.train is not None
        self.log.append((self.train, frame.copy()))
        return frame["market_price"].to_numpy(dtype=float)


def spy_factory(log: list[tuple[pd.DataFrame, pd.DataFrame]]):
    def factory() -> dict[str, FairValueEstimator]:
        est = default_estimators()
        est["model"] = SpyModel(log)
        return est

    return factory


# --- metrics on hand-computed examples -------------------------------------------------


def test_mape_is_a_fraction_over_finite_pairs() -> None:
    assert mape([100.0, 200.0], [110.0, 180.0]) == pytest.approx(0.1)
    assert mape([100.0, np.nan, 50.0], [90.0, 1.0, 60.0]) == pytest.approx((0.1 + 0.2) / 2)
    assert mape([], []) is None
    assert mape([1.0], [np.nan]) is None


def test_rmse_on_hand_example() -> None:
    assert rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == pytest.approx(math.sqrt(4 / 3))
    assert rmse([np.nan], [1.0]) is None


def test_precision_recall_and_undefined_cases() -> None:
    assert precision_recall([1, 1, 0, 0], [1, 0, 1, 0]) == (0.5, 0.5)
    assert precision_recall([1, 1, 1, 0], [1, 1, 0, 0]) == (pytest.approx(2 / 3), 1.0)
    assert precision_recall([0, 0], [1, 0]) == (None, 0.0)  # no prediction
    assert precision_recall([1, 0], [0, 0]) == (0.0, None)  # nothing to find
    assert precision_recall([], []) == (None, None)


def test_realised_moves_use_the_thresholds_inclusively() -> None:
    rose, fell = realised_moves([100, 100, 100, 100, 100], [110, 109, 85, 86, np.nan])
    assert rose.tolist() == [True, False, False, False, False]
    assert fell.tolist() == [False, False, True, False, False]


def test_signal_rate_counts_buy_and_sell() -> None:
    assert signal_rate(["BUY", "HOLD", "SELL", "HOLD"]) == 0.5
    assert signal_rate([]) is None


def test_flip_rate_compares_each_card_with_its_previous_day() -> None:
    cards = ["b", "a", "a", "b", "a"]
    dates = pd.to_datetime(["2025-01-02", "2025-01-03", "2025-01-01", "2025-01-01", "2025-01-02"])
    signals = ["HOLD", "HOLD", "BUY", "SELL", "BUY"]
    # a: BUY, BUY, HOLD -> 1 flip in 2; b: SELL, HOLD -> 1 flip in 1
    assert flip_rate(cards, dates, signals) == pytest.approx(2 / 3)
    assert flip_rate(["a"], dates[:1], ["BUY"]) is None


def test_coverage_counts_usable_fair_prices() -> None:
    assert coverage([1.0, np.nan, 2.0, 0.0]) == 0.5
    assert coverage([]) is None


def test_score_predictions_on_a_hand_example() -> None:
    frame = pd.DataFrame(
        {
            "card_id": ["a", "a", "a", "b"],
            "date": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-01"]),
            "market_price": [100.0, 100.0, 100.0, 100.0],
            TARGET_COLUMN: [120.0, 100.0, 80.0, np.nan],  # last row: not evaluable
        }
    )
    fair = np.array([125.0, np.nan, 50.0, 100.0])  # BUY, (no prediction), SELL
    got = score_predictions(frame, fair)
    assert list(got) == list(METRIC_KEYS)
    assert got["n"] == 3
    assert got["coverage"] == pytest.approx(2 / 3)
    assert got["mape"] == pytest.approx((5 / 120 + 30 / 80) / 2)
    assert got["rmse"] == pytest.approx(math.sqrt((25 + 900) / 2))
    assert (got["buy_precision"], got["buy_recall"]) == (1.0, 1.0)
    assert (got["sell_precision"], got["sell_recall"]) == (1.0, 1.0)
    assert got["signal_rate"] == pytest.approx(2 / 3)
    assert got["flip_rate"] == 1.0  # BUY -> HOLD -> SELL


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
    result = walk_forward_backtest(random_walks(), estimators=lambda: default_estimators(**SMALL))
    assert list(result) == ["horizon", "cut", "estimators"]
    assert result["horizon"] == 7
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", result["cut"])
    assert list(result["estimators"]) == ESTIMATOR_NAMES
    for metrics in result["estimators"].values():
        assert list(metrics) == list(METRIC_KEYS)
        assert isinstance(metrics["n"], int) and metrics["n"] > 0
        for key in METRIC_KEYS:
            value = metrics[key]
            assert value is None or isinstance(value, int | float)
            if key not in ("mape", "rmse", "n") and value is not None:
                assert 0.0 <= value <= 1.0
    text = json.dumps(result, allow_nan=False)  # None -> null, never NaN
    assert json.loads(text) == result


@pytest.mark.parametrize("horizon", [1, 2, 30])
def test_backtest_runs_for_any_horizon(horizon: int) -> None:
    result = walk_forward_backtest(
        random_walks(n_days=200), horizon=horizon, estimators=lambda: default_estimators(**SMALL)
    )
    assert result["horizon"] == horizon
    assert all(m["n"] > 0 for m in result["estimators"].values())


def test_backtest_is_deterministic() -> None:
    prices = random_walks(n_cards=4, n_days=120)
    a = walk_forward_backtest(prices, horizon=5, estimators=lambda: default_estimators(**SMALL))
    b = walk_forward_backtest(prices, horizon=5, estimators=lambda: default_estimators(**SMALL))
    assert a == b
    assert a["horizon"] == 5


def test_model_beats_every_baseline_on_the_bundled_data() -> None:
    prices = pd.read_csv(DEMO_CSV)
    result = walk_forward_backtest(prices, folds=1)
    mapes = {name: m["mape"] for name, m in result["estimators"].items()}
    assert all(mapes["model"] < mapes[name] for name in ESTIMATOR_NAMES[1:]), mapes
    assert result["estimators"]["model"]["coverage"] == 1.0
