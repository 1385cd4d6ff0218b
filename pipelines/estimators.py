"""Fair-value estimators: four baselines and the gradient-boosting model.

Every estimator works on a *feature frame*, the output of
``pipelines.features.build_features`` (for ``fit``, plus a ``target`` column from
``build_target``). ``predict`` returns fair prices (same units as ``market_price``) as a
float ndarray aligned with the frame's rows. Estimators are plain picklable objects,
deterministic (fixed ``random_state``, deterministic row sampling), with no Django.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from pipelines.features import FEATURE_COLUMNS, TARGET_COLUMN, build_features, build_target

BUY, HOLD, SELL = "BUY", "HOLD", "SELL"
BASELINE_NAMES: tuple[str, ...] = ("last_price", "rolling_mean_3", "rolling_median_7", "ewm")
MODEL_NAME = "model"
PREDICT_CHUNK_ROWS = 500_000


class NoTrainingData(ValueError):
    """Raised by ``fit`` when the frame has no usable training row."""


class FairValueEstimator(ABC):
    """Common interface: ``fit(frame) -> self`` and ``predict(frame) -> fair prices``."""

    name: str = "estimator"

    def fit(self, frame: pd.DataFrame) -> FairValueEstimator:
        """Learn from a feature frame with a ``target`` column. Baselines ignore it."""
        return self

    @abstractmethod
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Fair price for each row of a feature frame."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class ColumnBaseline(FairValueEstimator):
    """A baseline whose fair value is one price-level column of the feature frame."""

    def __init__(self, name: str, column: str) -> None:
        self.name = name
        self.column = column

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.column].to_numpy(dtype=float, copy=True)


def last_price() -> ColumnBaseline:
    """Fair value = today's market price."""
    return ColumnBaseline("last_price", "market_price")


def rolling_mean_3() -> ColumnBaseline:
    """Fair value = mean of the prices observed over the last 3 calendar days."""
    return ColumnBaseline("rolling_mean_3", "base_mean_3")


def rolling_median_7() -> ColumnBaseline:
    """Fair value = median of the prices observed over the last 7 calendar days."""
    return ColumnBaseline("rolling_median_7", "base_median_7")


def ewm() -> ColumnBaseline:
    """Fair value = exponentially weighted mean (span 7 days) of the daily price."""
    return ColumnBaseline("ewm", "base_ewm")


class GradientBoostingFairValue(FairValueEstimator):
    """Gradient boosting on scale-free features, predicting ``log(target / price)``.

    The fair price is ``market_price * exp(prediction)``. Working in log ratios with
    scale-free features (returns, distances from rolling levels, volatility, recency)
    makes one model transfer across price levels and products. Absolute-error loss
    (a median regression in log space) matches MAPE and is robust to price spikes.
    Large training sets are subsampled deterministically to ``max_train_rows``.
    """

    name = MODEL_NAME

    def __init__(
        self,
        *,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_depth: int = 3,
        min_samples_leaf: int = 100,
        l2_regularization: float = 1.0,
        max_train_rows: int = 300_000,
        target_clip: float = 1.0,
        random_state: int = 0,
        horizon: int = 7,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_train_rows = max_train_rows
        self.target_clip = target_clip
        self.random_state = random_state
        self.horizon = horizon  # the H its features and target were built with
        self.regressor_: HistGradientBoostingRegressor | None = None
        self.n_train_rows_: int = 0

    def get_params(self) -> dict[str, Any]:
        keys = [
            "max_iter",
            "learning_rate",
            "max_depth",
            "min_samples_leaf",
            "l2_regularization",
            "max_train_rows",
            "target_clip",
            "random_state",
            "horizon",
        ]
        return {k: getattr(self, k) for k in keys}

    @staticmethod
    def _matrix(frame: pd.DataFrame) -> np.ndarray:
        return frame[FEATURE_COLUMNS].to_numpy(dtype=np.float32)

    def fit(self, frame: pd.DataFrame) -> GradientBoostingFairValue:
        price = frame["market_price"].to_numpy(dtype=float)
        target = frame[TARGET_COLUMN].to_numpy(dtype=float)
        rows = np.flatnonzero(np.isfinite(target) & (target > 0) & (price > 0))
        if len(rows) == 0:
            raise NoTrainingData("no training rows with a finite target")
        if len(rows) > self.max_train_rows:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(rows, size=self.max_train_rows, replace=False))
        y = np.log(target[rows] / price[rows])
        y = np.clip(y, -self.target_clip, self.target_clip)
        reg = HistGradientBoostingRegressor(
            loss="absolute_error",
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_samples_leaf=min(self.min_samples_leaf, max(len(rows) // 10, 1)),
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.random_state,
        )
        X = self._matrix(frame.iloc[rows])
        # A column with no value at all (e.g. a 4H return when the history is shorter than
        # 4H) breaks the binner; a constant column is equivalent and never split on.
        X[:, np.isnan(X).all(axis=0)] = 0.0
        reg.fit(X, y)
        self.regressor_ = reg
        self.n_train_rows_ = len(rows)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.regressor_ is None:
            raise RuntimeError("fit() must be called before predict()")
        if len(frame) == 0:
            return np.empty(0, dtype=float)
        # Chunks bound the memory of the float32 feature matrix on large frames.
        log_ratio = np.concatenate(
            [
                self.regressor_.predict(self._matrix(frame.iloc[i : i + PREDICT_CHUNK_ROWS]))
                for i in range(0, len(frame), PREDICT_CHUNK_ROWS)
            ]
        )
        log_ratio = np.clip(log_ratio.astype(float), -self.target_clip, self.target_clip)
        return frame["market_price"].to_numpy(dtype=float) * np.exp(log_ratio)


def make_model(**params: Any) -> GradientBoostingFairValue:
    """The fair-value model with its default (or overridden) parameters."""
    return GradientBoostingFairValue(**params)


def default_estimators(**model_params: Any) -> dict[str, FairValueEstimator]:
    """Fresh, unfitted estimators keyed by backtest name: the model then the baselines."""
    return {
        MODEL_NAME: make_model(**model_params),
        "last_price": last_price(),
        "rolling_mean_3": rolling_mean_3(),
        "rolling_median_7": rolling_median_7(),
        "ewm": ewm(),
    }


def deviation(market: np.ndarray | pd.Series, fair: np.ndarray | pd.Series) -> np.ndarray:
    """(market - fair) / fair, NaN where fair is missing or not positive."""
    m = np.asarray(market, dtype=float)
    f = np.asarray(fair, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(f) & (f > 0), (m - f) / f, np.nan)


def signal_for(
    deviation: np.ndarray | pd.Series | float, buy: float = 0.10, sell: float = 0.15
) -> np.ndarray:
    """BUY when deviation <= -buy, SELL when >= sell, HOLD otherwise (also for NaN)."""
    d = np.atleast_1d(np.asarray(deviation, dtype=float))
    out = np.full(d.shape, HOLD, dtype=object)
    out[d <= -buy] = BUY
    out[d >= sell] = SELL
    return out


def predictions_frame(
    frame: pd.DataFrame,
    fair: np.ndarray | pd.Series,
    buy: float = 0.10,
    sell: float = 0.15,
) -> pd.DataFrame:
    """``card_id, date, market_price, fair_price, deviation, signal`` for each row.

    ``frame`` needs ``card_id``, ``date`` and ``market_price`` (a feature frame or a
    price frame aligned with ``fair``). Rows without a finite fair price get NaN
    deviation and HOLD; callers that publish predictions should drop them.
    """
    fair_arr = np.asarray(fair, dtype=float)
    if len(fair_arr) != len(frame):
        raise ValueError("fair must have one value per frame row")
    out = frame.loc[:, ["card_id", "date", "market_price"]].reset_index(drop=True)
    out["fair_price"] = fair_arr
    out["deviation"] = deviation(out["market_price"], fair_arr)
    out["signal"] = signal_for(out["deviation"].to_numpy(), buy=buy, sell=sell)
    return out


def train_model(prices: pd.DataFrame, horizon: int = 7, **params: Any) -> GradientBoostingFairValue:
    """Fit the model on every card-day of ``prices`` whose target is known."""
    frame = build_features(prices, horizon)
    frame[TARGET_COLUMN] = build_target(prices, horizon).to_numpy()
    return make_model(horizon=horizon, **params).fit(frame)


def predict_prices(
    estimator: FairValueEstimator,
    prices: pd.DataFrame,
    *,
    horizon: int | None = None,
    since: str | pd.Timestamp | None = None,
    buy: float = 0.10,
    sell: float = 0.15,
) -> pd.DataFrame:
    """``predictions_frame`` for every card-day of ``prices`` (dated >= ``since``).

    Pass the whole available history even with ``since``: features of day t look back
    up to 4H days. ``horizon`` defaults to the estimator's own ``horizon`` (else 7).
    """
    h = horizon if horizon is not None else int(getattr(estimator, "horizon", 7))
    frame = build_features(prices, h)
    if since is not None:
        frame = frame.loc[frame["date"] >= pd.Timestamp(since)]
    return predictions_frame(frame, estimator.predict(frame), buy=buy, sell=sell)
