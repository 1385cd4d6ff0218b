"""Estimators: baselines by hand, the model and its band on synthetic data, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from pipelines.estimators import (
    BASELINE_NAMES,
    MODEL_NAME,
    PREDICTION_COLUMNS,
    Band,
    GradientBoostingFairValue,
    NoTrainingData,
    default_estimators,
    last_price,
    make_model,
    predict_prices,
    predictions_frame,
    train_model,
)
from pipelines.features import TARGET_COLUMN, build_features, build_target
from pipelines.metrics import score_predictions
from pipelines.signals import SignalConfig

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


def random_walk_prices(n_cards: int, n_days: int, sigma: float, seed: int = 0) -> pd.DataFrame:
    """Pure random walks: log price steps are i.i.d. N(0, sigma), nothing to predict."""
    rng = np.random.default_rng(seed)
    log_price = np.log(rng.uniform(10, 1000, (n_cards, 1))) + rng.normal(
        0, sigma, (n_cards, n_days)
    ).cumsum(1)
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


def test_baseline_band_is_the_empirical_quantiles_of_its_errors() -> None:
    frame = pd.DataFrame(
        {
            "market_price": [100.0] * 10,
            # log(target / 100) = 0.01 .. 0.10
            TARGET_COLUMN: 100.0 * np.exp(np.arange(1, 11) / 100),
        }
    )
    est = last_price().fit(frame)
    band = est.predict_band(frame.iloc[:1])
    low, high = np.quantile(np.arange(1, 11) / 100, [0.1, 0.9])
    assert band.fair.tolist() == [100.0]
    assert band.low[0] == pytest.approx(100 * np.exp(low))
    assert band.high[0] == pytest.approx(100 * np.exp(high))


def test_unfitted_baseline_has_a_fair_value_but_no_band() -> None:
    frame = pd.DataFrame({"market_price": [5.0, 7.0]})
    band = last_price().predict_band(frame)
    assert band.fair.tolist() == [5.0, 7.0]
    assert np.isnan(band.low).all() and np.isnan(band.high).all()


def test_default_estimators_are_the_model_and_the_four_baselines() -> None:
    est = default_estimators()
    assert list(est) == [MODEL_NAME, *BASELINE_NAMES]
    assert all(e.name == name for name, e in est.items())


def test_model_learns_to_see_through_noise() -> None:
    frame = training_frame(noisy_prices())
    train = frame[frame["date"] < START + pd.Timedelta(days=140)]
    test = frame[(frame["date"] >= START + pd.Timedelta(days=150)) & frame[TARGET_COLUMN].notna()]
    model = make_model(horizon=7).fit(train)
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
    for got, expected in zip(clone.predict_band(frame), est.predict_band(frame), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_a_point_model_pickled_before_bands_still_predicts_without_a_band() -> None:
    frame = training_frame(noisy_prices(n_cards=3, n_days=80))
    model = make_model(horizon=7, **SMALL).fit(frame)
    state = dict(model.__dict__)
    for name in ("median_", "low_", "high_", "offset_", "shrink", "calibration_days"):
        state.pop(name)
    state["regressor_"] = model.median_  # what the point model of earlier versions kept
    legacy = GradientBoostingFairValue.__new__(GradientBoostingFairValue)
    legacy.__setstate__(state)
    band = legacy.predict_band(frame)
    assert np.isfinite(band.fair).all()
    assert np.isnan(band.low).all() and np.isnan(band.high).all()


def test_band_is_calibrated_out_of_sample_on_random_walks() -> None:
    """On random walks the H-day median has a known spread: ~80 % must land in the band,
    ~10 % below and ~10 % above, on days after the training window."""
    horizon = 7
    frame = training_frame(random_walk_prices(80, 360, sigma=0.02), horizon)
    cut = START + pd.Timedelta(days=280)
    train = frame[frame["date"] + pd.Timedelta(days=horizon) < cut]
    test = frame[(frame["date"] >= cut) & frame[TARGET_COLUMN].notna()]
    model = make_model(horizon=horizon, **SMALL).fit(train)
    assert model.calibrated_
    got = score_predictions(test, model.predict_band(test))
    assert 0.74 <= got["band_coverage"] <= 0.86, got
    assert 0.05 <= got["band_below"] <= 0.15, got
    assert 0.05 <= got["band_above"] <= 0.15, got
    # The fair value is a median: about half the realised medians fall below it.
    assert 0.4 <= got["calibration"]["observed"][1] <= 0.6, got


def test_conformal_step_widens_the_band_when_volatility_rises() -> None:
    """The market calms for most of the training window, then turns four times as
    volatile: quantile models fitted before the calibration block give a band far too
    narrow for it; the conformal offset fitted on the block restores the coverage."""
    horizon, n_cards, n_days, turn = 7, 80, 400, 300
    rng = np.random.default_rng(5)
    sigma = np.where(np.arange(n_days) < turn, 0.01, 0.04)
    steps = rng.normal(0, 1, (n_cards, n_days)) * sigma
    log_price = np.log(rng.uniform(10, 1000, (n_cards, 1))) + steps.cumsum(1)
    card, day = np.divmod(np.arange(n_cards * n_days), n_days)
    prices = pd.DataFrame(
        {
            "card_id": [f"card-{c}" for c in card],
            "date": START + pd.to_timedelta(day, unit="D"),
            "market_price": np.exp(log_price.ravel()),
        }
    )
    frame = training_frame(prices, horizon)
    cut = START + pd.Timedelta(days=340)
    train = frame[frame["date"] + pd.Timedelta(days=horizon) < cut]
    test = frame[(frame["date"] >= cut) & frame[TARGET_COLUMN].notna()]
    model = make_model(horizon=horizon, **SMALL).fit(train)
    assert model.calibration_["raw_block_coverage"] < 0.6
    assert model.offset_ > 0
    got = score_predictions(test, model.predict_band(test))
    assert 0.75 <= got["band_coverage"] <= 0.85, got
    # Without the conformal step (quantile models on every training row) it stays too narrow.
    raw = make_model(horizon=horizon, calibration_days=0, **SMALL).fit(train)
    assert not raw.calibrated_
    raw_got = score_predictions(test, raw.predict_band(test))
    assert raw_got["band_coverage"] < 0.72, raw_got


def test_conformal_offset_is_the_finite_sample_quantile_of_the_scores() -> None:
    class Constant:
        def __init__(self, value: float) -> None:
            self.value = value

        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.full(len(X), self.value)

    model = make_model(coverage=0.8)
    model.low_, model.high_ = Constant(-0.01), Constant(0.01)
    y = np.arange(1, 10) / 100  # scores max(low - y, y - high) = y - 0.01
    frame = pd.DataFrame(
        {c: 0.0 for c in build_features(noisy_prices(1, 2), 7).columns}, index=range(9)
    )
    frame["date"] = START
    offset = model._conformal_offset(frame, np.arange(9), y)
    # ceil((9 + 1) * 0.8) / 9 = 8/9: the 8th smallest of 0.00 .. 0.08
    assert offset == pytest.approx(0.07)


def test_model_without_enough_history_uses_the_raw_band() -> None:
    frame = training_frame(noisy_prices(n_cards=3, n_days=40))
    model = make_model(horizon=7, **SMALL).fit(frame)
    assert not model.calibrated_ and model.offset_ == 0.0
    band = model.predict_band(frame)
    assert (band.low <= band.fair).all() and (band.fair <= band.high).all()


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


def test_predictions_frame_has_contract_columns() -> None:
    frame = pd.DataFrame(
        {
            "card_id": ["a", "a", "b"],
            "date": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-01"]),
            "market_price": [80.0, 100.0, 130.0],
        },
        index=[5, 6, 7],
    )
    fair = np.array([100.0, 100.0, 100.0])
    band = Band(fair, np.array([85.0, 95.0, 95.0]), np.array([105.0, 105.0, 140.0]))
    out = predictions_frame(frame, band, SignalConfig(rule="band"))
    assert list(out.columns) == PREDICTION_COLUMNS
    np.testing.assert_allclose(out["deviation"], [-0.2, 0.0, 0.3])
    assert out["fair_low"].tolist() == [85.0, 95.0, 95.0]
    assert out["signal"].tolist() == ["BUY", "HOLD", "HOLD"]  # 130 is inside 95..140
    by_deviation = predictions_frame(frame, band, SignalConfig(rule="deviation"))
    assert by_deviation["signal"].tolist() == ["BUY", "HOLD", "SELL"]
    with pytest.raises(ValueError):
        predictions_frame(frame, Band(*(np.array([1.0]),) * 3))


def test_train_model_and_predict_prices_round_trip() -> None:
    prices = noisy_prices(n_cards=4, n_days=100)
    model = train_model(prices, horizon=5, **SMALL)
    assert model.horizon == 5
    out = predict_prices(model, prices, since=START + pd.Timedelta(days=90))
    assert len(out) == 4 * 10
    assert out["date"].min() == START + pd.Timedelta(days=90)
    assert out["fair_price"].gt(0).all()
    assert (out["fair_low"] <= out["fair_price"]).all()
    assert (out["fair_price"] <= out["fair_high"]).all()
    assert set(out["signal"]) <= {"BUY", "HOLD", "SELL"}
