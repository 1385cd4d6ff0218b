"""Estimators: baselines by hand, the model on synthetic data, signals, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from pipelines.estimators import (
    BASELINE_NAMES,
    MODEL_NAME,
    GradientBoostingFairValue,
    NoTrainingData,
    default_estimators,
    deviation,
    make_model,
    predict_prices,
    predictions_frame,
    signal_for,
    train_model,
)
from pipelines.features import TARGET_COLUMN, build_features, build_target

START = pd.Timestamp("2025-01-01")
SMALL = {"max_iter": 30, "min_samples_leaf": 20}


def noisy_prices(n_cards: int = 12, n_days: int = 200, seed: int = 0) -> pd.DataFrame:
    """A slow random-walk fair value seen through 6% i.i.d. listing noise."""
    rng = np.random.default_rng(seed)
    level = np.log(rng.uniform(10, 1000, (n_cards, 1)))
    log_price = level + rng.normal(0, 0.005, (n_cards, n_days)).cumsum(1)
    log_price += rng.normal(0, 0.06, (n_cards, n_days))
    card, day = np.divmod(np.arange(n_cards * n_days), n_days)
    return pd.DataFrame(
        {
            "card_id": [f"card-{c}" for c in card],
            "date": START + pd.to_timedelta(day, unit="D"),
            "market_price": np.exp(log_price.ravel()),
        }
    )


def training_frame(prices: pd.DataFrame, horizon: int = 7) -> pd.DataFrame:
    frame = build_features(prices, horizon)
    frame[TARGET_COLUMN] = build_target(prices, horizon).to_numpy()
    return frame


def test_baselines_match_hand_computed_values() -> None:
    prices = pd.DataFrame(
        {
            "card_id": "a",
            "date": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-05"]),
            "market_price": [10.0, 20.0, 60.0, 30.0],
        }
    )
    frame = build_features(prices, 7)
    est = default_estimators()
    assert est["last_price"].predict(frame).tolist() == [10.0, 20.0, 60.0, 30.0]
    # mean of the prices observed in the last 3 calendar days (01-04 is missing)
    assert est["rolling_mean_3"].predict(frame).tolist() == [10.0, 15.0, 30.0, 45.0]
    assert est["rolling_median_7"].predict(frame).tolist() == [10.0, 15.0, 20.0, 25.0]
    # ewm (span 7, alpha 0.25) over the daily, forward-filled series 10, 20, 60, 60, 30
    w = 0.75 ** np.arange(5)[::-1]
    expected = np.dot(w, [10, 20, 60, 60, 30]) / w.sum()
    assert est["ewm"].predict(frame)[-1] == pytest.approx(expected)


def test_default_estimators_are_the_model_and_the_four_baselines() -> None:
    est = default_estimators()
    assert list(est) == [MODEL_NAME, *BASELINE_NAMES]
    assert all(e.name == name for name, e in est.items())


def test_model_learns_to_see_through_noise() -> None:
    frame = training_frame(noisy_prices())
    train = frame[frame["date"] < START + pd.Timedelta(days=140)]
    test = frame[(frame["date"] >= START + pd.Timedelta(days=150)) & frame[TARGET_COLUMN].notna()]
    model = make_model().fit(train)
    fair = model.predict(test)
    target = test[TARGET_COLUMN].to_numpy()
    model_err = np.mean(np.abs(fair / target - 1))
    last_err = np.mean(np.abs(test["market_price"].to_numpy() / target - 1))
    assert model_err < 0.8 * last_err


def test_model_predicts_positive_prices_even_without_history() -> None:
    model = make_model(**SMALL).fit(training_frame(noisy_prices()))
    newcomer = pd.DataFrame({"card_id": ["new"], "date": [START], "market_price": [42.0]})
    fair = model.predict(build_features(newcomer, 7))
    assert fair.shape == (1,)
    assert np.isfinite(fair[0]) and fair[0] > 0
    assert abs(fair[0] / 42.0 - 1) < 0.2


def test_model_transfers_across_price_levels() -> None:
    prices = noisy_prices()
    model = make_model(**SMALL).fit(training_frame(prices))
    frame = build_features(prices, 7)
    scaled = build_features(prices.assign(market_price=prices["market_price"] * 100), 7)
    np.testing.assert_allclose(model.predict(scaled), model.predict(frame) * 100, rtol=1e-4)


def test_model_is_deterministic() -> None:
    frame = training_frame(noisy_prices())
    a = make_model(**SMALL).fit(frame).predict(frame)
    b = make_model(**SMALL).fit(frame).predict(frame)
    np.testing.assert_array_equal(a, b)


def test_model_subsamples_training_rows_deterministically() -> None:
    frame = training_frame(noisy_prices())
    a = make_model(max_train_rows=500, **SMALL).fit(frame)
    b = make_model(max_train_rows=500, **SMALL).fit(frame)
    assert a.n_train_rows_ == 500
    np.testing.assert_array_equal(a.predict(frame), b.predict(frame))


@pytest.mark.parametrize("name", [MODEL_NAME, *BASELINE_NAMES])
def test_estimators_survive_pickling(name: str) -> None:
    frame = training_frame(noisy_prices(n_cards=3, n_days=80))
    est = default_estimators(**SMALL)[name].fit(frame)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(frame), est.predict(frame))


def test_model_trains_when_a_feature_is_never_available() -> None:
    frame = training_frame(noisy_prices(n_cards=4, n_days=25))
    assert frame["ret_4h"].isna().all()  # 28-day return on 25 days of history
    fair = make_model(**SMALL).fit(frame).predict(frame)
    assert np.isfinite(fair).all()


def test_model_without_targets_raises_no_training_data() -> None:
    frame = build_features(noisy_prices(n_cards=2, n_days=20), 7)
    frame[TARGET_COLUMN] = np.nan
    with pytest.raises(NoTrainingData):
        make_model().fit(frame)


def test_model_predict_before_fit_raises() -> None:
    with pytest.raises(RuntimeError):
        GradientBoostingFairValue().predict(build_features(noisy_prices(2, 10), 7))


def test_signal_for_applies_inclusive_thresholds() -> None:
    dev = np.array([-0.5, -0.10, -0.0999, 0.0, 0.1499, 0.15, 0.9, np.nan])
    assert signal_for(dev).tolist() == [
        "BUY",
        "BUY",
        "HOLD",
        "HOLD",
        "HOLD",
        "SELL",
        "SELL",
        "HOLD",
    ]
    assert signal_for(dev, buy=0.05, sell=0.05).tolist()[2:5] == ["BUY", "HOLD", "SELL"]
    assert signal_for(-0.2).tolist() == ["BUY"]


def test_deviation_is_relative_to_fair_value() -> None:
    np.testing.assert_allclose(deviation([90.0, 120.0], [100.0, 100.0]), [-0.1, 0.2])
    assert np.isnan(deviation([1.0], [0.0])[0])


def test_predictions_frame_has_contract_columns() -> None:
    frame = pd.DataFrame(
        {
            "card_id": ["a", "a", "b"],
            "date": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-01"]),
            "market_price": [80.0, 100.0, 130.0],
        },
        index=[5, 6, 7],
    )
    out = predictions_frame(frame, np.array([100.0, 100.0, 100.0]))
    assert list(out.columns) == [
        "card_id",
        "date",
        "market_price",
        "fair_price",
        "deviation",
        "signal",
    ]
    np.testing.assert_allclose(out["deviation"], [-0.2, 0.0, 0.3])
    assert out["signal"].tolist() == ["BUY", "HOLD", "SELL"]
    with pytest.raises(ValueError):
        predictions_frame(frame, np.array([1.0]))


def test_train_model_and_predict_prices_round_trip() -> None:
    prices = noisy_prices(n_cards=4, n_days=100)
    model = train_model(prices, horizon=5, **SMALL)
    assert model.horizon == 5
    out = predict_prices(model, prices, since=START + pd.Timedelta(days=90))
    assert len(out) == 4 * 10
    assert out["date"].min() == START + pd.Timedelta(days=90)
    assert out["fair_price"].gt(0).all()
    assert set(out["signal"]) <= {"BUY", "HOLD", "SELL"}
