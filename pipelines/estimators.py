"""Fair-value estimators: four baselines and the quantile gradient-boosting model.

Every estimator works on a *feature frame*, the output of
``pipelines.features.build_features`` (for ``fit``, plus a ``target`` column from
``build_target``). ``predict_band`` returns a :class:`Band`: the fair price (the estimate
of the median price over the next H days) and ``low`` / ``high``, the 10th and 90th
percentiles of that median, as float arrays aligned with the frame's rows, in the units
of ``market_price``. ``predict`` is the fair price alone. Estimators are plain picklable
objects, deterministic (fixed ``random_state``, deterministic row sampling), with no
Django.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from pipelines.features import (
    CARD_FEATURE_COLUMNS,
    TARGET_COLUMN,
    build_features,
    build_target,
)
from pipelines.signals import SignalConfig, deviation, signals

BASELINE_NAMES: tuple[str, ...] = ("last_price", "rolling_mean_3", "rolling_median_7", "ewm")
MODEL_NAME = "model"
PREDICT_CHUNK_ROWS = 500_000
#: The band: 10th and 90th percentiles of the H-day median (an 80 % interval).
BAND_QUANTILES: tuple[float, float] = (0.10, 0.90)


class NoTrainingData(ValueError):
    """Raised by ``fit`` when the frame has no usable training row."""


class Band(NamedTuple):
    """Fair price and its band, one value per row (NaN where there is none)."""

    fair: np.ndarray
    low: np.ndarray
    high: np.ndarray


class FairValueEstimator(ABC):
    """Common interface: ``fit(frame) -> self`` and ``predict_band(frame) -> Band``."""

    name: str = "estimator"

    @abstractmethod
    def fit(self, frame: pd.DataFrame) -> FairValueEstimator:
        """Learn from a feature frame with a ``target`` column."""

    @abstractmethod
    def predict_band(self, frame: pd.DataFrame) -> Band:
        """Fair price, low and high for each row of a feature frame."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Fair price for each row of a feature frame."""
        return self.predict_band(frame).fair

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _log_ratios(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a usable target, and ``log(target / market_price)`` on them."""
    price = frame["market_price"].to_numpy(dtype=float)
    target = frame[TARGET_COLUMN].to_numpy(dtype=float)
    rows = np.flatnonzero(np.isfinite(target) & (target > 0) & (price > 0))
    return rows, np.log(target[rows] / price[rows])


class ColumnBaseline(FairValueEstimator):
    """A baseline whose fair value is one price-level column of the feature frame.

    Its band is empirical: ``fit`` stores the 10th and 90th percentiles of
    ``log(target / fair)`` over the training rows, and the band is ``fair`` times their
    exponentials. Unfitted, it still gives the fair value, with no band (NaN).
    """

    def __init__(self, name: str, column: str) -> None:
        self.name = name
        self.column = column
        self.log_low_: float = math.nan
        self.log_high_: float = math.nan

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Baselines pickled before bands existed have no quantiles: no band.
        self.__dict__.update({"log_low_": math.nan, "log_high_": math.nan, **state})

    def fit(self, frame: pd.DataFrame) -> ColumnBaseline:
        fair = frame[self.column].to_numpy(dtype=float)
        target = frame[TARGET_COLUMN].to_numpy(dtype=float)
        ok = np.isfinite(fair) & (fair > 0) & np.isfinite(target) & (target > 0)
        if not ok.any():
            raise NoTrainingData("no training rows with a finite target")
        errors = np.log(target[ok] / fair[ok])
        self.log_low_, self.log_high_ = (float(q) for q in np.quantile(errors, BAND_QUANTILES))
        return self

    def predict_band(self, frame: pd.DataFrame) -> Band:
        fair = frame[self.column].to_numpy(dtype=float, copy=True)
        return Band(fair, fair * math.exp(self.log_low_), fair * math.exp(self.log_high_))


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
    """Quantile gradient boosting on scale-free features, with a conformal band.

    Three ``HistGradientBoostingRegressor`` with the quantile loss predict the 10th, 50th
    and 90th percentiles of ``y = log(target / price)`` (the log ratio of the coming
    H-day median to today's price), so one model serves every price level.

    - **Fair price** = ``price * exp(shrink * median)``. The median is fitted on every
      training row; ``shrink`` (< 1) pulls the predicted move toward "no change", which
      the walk-forward validation before the first cut found more accurate at H = 30 and
      no worse at H = 7 (docs/model.md).
    - **Band**: conformalised quantile regression (CQR). The low and high models are
      fitted on the training rows whose target window ends before the *calibration
      block* (the last ``calibration_days`` days of the training window); on that block,
      out of sample, the conformity score ``max(low - y, y - high)`` is computed, and its
      ``coverage`` quantile widens (or narrows) both ends of the band. The scored period
      is never used: the block is inside the training window. With too little history
      for a block, the raw quantile band is used and ``calibrated_`` is False.

    Large training sets are subsampled deterministically to ``max_train_rows``.
    """

    name = MODEL_NAME

    def __init__(
        self,
        *,
        max_iter: int = 100,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_samples_leaf: int = 200,
        l2_regularization: float = 1.0,
        max_train_rows: int = 300_000,
        target_clip: float = 1.0,
        shrink: float = 0.75,
        calibration_days: int = 30,
        coverage: float = 0.80,
        random_state: int = 0,
        horizon: int = 30,
        features: tuple[str, ...] | None = None,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_train_rows = max_train_rows
        self.target_clip = target_clip
        self.shrink = shrink
        self.calibration_days = calibration_days
        self.coverage = coverage
        self.random_state = random_state
        self.horizon = horizon  # the H its features and target were built with
        # The card's own features by default: the market features (medians over all cards,
        # also in FEATURE_COLUMNS) did not help before the first cut (docs/model.md).
        self.features = tuple(features or CARD_FEATURE_COLUMNS)
        self.median_: HistGradientBoostingRegressor | None = None
        self.low_: HistGradientBoostingRegressor | None = None
        self.high_: HistGradientBoostingRegressor | None = None
        self.offset_: float = 0.0
        self.calibrated_: bool = False
        self.calibration_: dict[str, Any] = {}
        self.n_train_rows_: int = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "regressor_" in state:  # a point model pickled before bands existed: no band
            state = {**state, "median_": state.pop("regressor_"), "shrink": 1.0}
        self.__dict__.update({**GradientBoostingFairValue().__dict__, **state})

    def get_params(self) -> dict[str, Any]:
        keys = [
            "max_iter",
            "learning_rate",
            "max_depth",
            "min_samples_leaf",
            "l2_regularization",
            "max_train_rows",
            "target_clip",
            "shrink",
            "calibration_days",
            "coverage",
            "random_state",
            "horizon",
            "features",
        ]
        return {k: getattr(self, k) for k in keys}

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[list(self.features)].to_numpy(dtype=np.float32)

    def _sample(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) > self.max_train_rows:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(rows, size=self.max_train_rows, replace=False))
        return rows

    def _fit_quantile(
        self, frame: pd.DataFrame, rows: np.ndarray, y: np.ndarray, quantile: float
    ) -> HistGradientBoostingRegressor:
        reg = HistGradientBoostingRegressor(
            loss="quantile",
            quantile=quantile,
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
        return reg.fit(X, np.clip(y, -self.target_clip, self.target_clip))

    def fit(self, frame: pd.DataFrame) -> GradientBoostingFairValue:
        rows, y_all = _log_ratios(frame)
        if len(rows) == 0:
            raise NoTrainingData("no training rows with a finite target")
        y_of = pd.Series(y_all, index=rows)
        sample = self._sample(rows)
        self.median_ = self._fit_quantile(frame, sample, y_of.loc[sample].to_numpy(), 0.5)
        self.n_train_rows_ = len(sample)

        dates = frame["date"].to_numpy()[rows]
        block_start = dates.max() - np.timedelta64(self.calibration_days - 1, "D")
        before = rows[dates + np.timedelta64(self.horizon, "D") < block_start]
        block = rows[dates >= block_start]
        self.calibrated_ = len(before) >= 200 and len(block) >= 50
        band_rows = self._sample(before if self.calibrated_ else rows)
        low_q, high_q = BAND_QUANTILES
        self.low_ = self._fit_quantile(frame, band_rows, y_of.loc[band_rows].to_numpy(), low_q)
        self.high_ = self._fit_quantile(frame, band_rows, y_of.loc[band_rows].to_numpy(), high_q)
        self.offset_ = 0.0
        self.calibration_ = {"calibrated": self.calibrated_, "band_rows": len(band_rows)}
        if self.calibrated_:
            self.offset_ = self._conformal_offset(frame, block, y_of.loc[block].to_numpy())
        return self

    def _conformal_offset(self, frame: pd.DataFrame, block: np.ndarray, y: np.ndarray) -> float:
        """CQR: the finite-sample ``coverage`` quantile of ``max(low - y, y - high)``."""
        if self.low_ is None or self.high_ is None:
            raise RuntimeError("the band models must be fitted before calibrating them")
        X = self._matrix(frame.iloc[block])
        low, high = self.low_.predict(X), self.high_.predict(X)
        y = np.clip(y, -self.target_clip, self.target_clip)
        scores = np.maximum(low - y, y - high)
        # The k-th smallest score, k = ceil((n + 1) * coverage): the split-conformal rule.
        n = len(scores)
        k = min(math.ceil((n + 1) * self.coverage), n)
        offset = float(np.partition(scores, k - 1)[k - 1])
        self.calibration_.update(
            block_rows=n,
            block_start=str(pd.Timestamp(frame["date"].iloc[block].min()).date()),
            raw_block_coverage=float(np.mean((y >= low) & (y <= high))),
            offset=offset,
        )
        return offset

    def predict_band(self, frame: pd.DataFrame) -> Band:
        if self.median_ is None:
            raise RuntimeError("fit() must be called before predict_band()")
        if len(frame) == 0:
            return Band(np.empty(0), np.empty(0), np.empty(0))
        models = (self.low_, self.median_, self.high_)
        parts: list[list[np.ndarray]] = []
        # Chunks bound the memory of the float32 feature matrix on large frames.
        for i in range(0, len(frame), PREDICT_CHUNK_ROWS):
            X = self._matrix(frame.iloc[i : i + PREDICT_CHUNK_ROWS])
            parts.append([m.predict(X) if m else np.full(len(X), np.nan) for m in models])
        low, mid, high = (np.concatenate([p[k] for p in parts]) for k in range(3))
        low, high = np.minimum(low, high) - self.offset_, np.maximum(low, high) + self.offset_
        mid = mid * self.shrink
        # The fair value stays inside its band (a legacy model has none: NaN).
        mid = np.where(np.isnan(low) | np.isnan(high), mid, np.clip(mid, low, high))
        clip = self.target_clip
        price = frame["market_price"].to_numpy(dtype=float)
        return Band(
            price * np.exp(np.clip(mid, -clip, clip)),
            price * np.exp(np.clip(low, -clip, clip)),
            price * np.exp(np.clip(high, -clip, clip)),
        )


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


PREDICTION_COLUMNS: list[str] = [
    "card_id",
    "date",
    "market_price",
    "fair_price",
    "fair_low",
    "fair_high",
    "deviation",
    "signal",
]


def predictions_frame(
    frame: pd.DataFrame, band: Band, config: SignalConfig | None = None
) -> pd.DataFrame:
    """``PREDICTION_COLUMNS`` for each row: fair price, band, deviation and signal.

    ``frame`` needs ``card_id``, ``date`` and ``market_price`` (a feature frame or a
    price frame aligned with ``band``). Rows without a finite fair price get NaN
    deviation and HOLD; callers that publish predictions should drop them.
    """
    config = config or SignalConfig()
    fair = np.asarray(band.fair, dtype=float)
    if len(fair) != len(frame):
        raise ValueError("the band must have one value per frame row")
    out = frame.loc[:, ["card_id", "date", "market_price"]].reset_index(drop=True)
    out["fair_price"] = fair
    out["fair_low"] = np.asarray(band.low, dtype=float)
    out["fair_high"] = np.asarray(band.high, dtype=float)
    out["deviation"] = deviation(out["market_price"], fair)
    out["signal"] = signals(
        out["market_price"].to_numpy(), fair, out["fair_low"], out["fair_high"], config
    )
    return out


def train_model(
    prices: pd.DataFrame, horizon: int = 30, **params: Any
) -> GradientBoostingFairValue:
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
    config: SignalConfig | None = None,
) -> pd.DataFrame:
    """``predictions_frame`` for every card-day of ``prices`` (dated >= ``since``).

    Pass the whole available history (of every card: the market features are medians
    over the cards) even with ``since``: features of day t look back up to 4H days.
    ``horizon`` defaults to the estimator's own ``horizon`` (else 30).
    """
    h = horizon if horizon is not None else int(getattr(estimator, "horizon", 30))
    frame = build_features(prices, h)
    if since is not None:
        frame = frame.loc[frame["date"] >= pd.Timestamp(since)]
    return predictions_frame(frame, estimator.predict_band(frame), config)
