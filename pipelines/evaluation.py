"""Metrics and the walk-forward backtest (DESIGN.md section 4).

Metrics are pure functions returning plain floats/ints, or ``None`` where undefined.

Walk-forward protocol (``walk_forward_backtest``)
    Features are point-in-time (a row at day t uses prices up to t only), so they are
    built once for the whole history. The scored period (by default the last 30% of
    the distinct dates) is split into ``folds`` consecutive blocks with expanding
    training windows: the fold starting at ``cut`` trains on card-days t whose target
    window ends before the cut (``t + H < cut``), so no training target uses a price
    dated on or after the cut, then scores the card-days in ``[cut, next cut)``. A
    card-day is *evaluable* when its realised target (median over t+1..t+H) exists.
    Metrics pool the evaluable card-days of all folds; ``cut`` reports the first cut.

What is reported per estimator
    point accuracy (``mape``, ``rmse``), ``coverage`` (share of card-days with a fair
    price), the band (``band_coverage`` inside, ``band_below``, ``band_above``, and
    ``calibration``: the observed share of realised medians below the low, fair and high
    values, against the nominal 0.1 / 0.5 / 0.9), and the signal metrics of each rule
    (``SIGNAL_KEYS``) under ``rules``, those of the default rule also at the top level.
    ``base`` holds the base rates of the same events over all scored card-days.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipelines.estimators import (
    Band,
    FairValueEstimator,
    NoTrainingData,
    default_estimators,
)
from pipelines.features import TARGET_COLUMN, build_features, build_target
from pipelines.signals import BUY, RULES, SELL, SignalConfig, outcomes, signals

#: The signal metrics reported per rule (fractions; ``None`` where undefined).
SIGNAL_KEYS: tuple[str, ...] = (
    "signal_rate",
    "flip_rate",
    "buy_n",
    "buy_precision",
    "buy_recall",
    "buy_hit_rate",
    "buy_mean_return",
    "sell_n",
    "sell_precision",
    "sell_recall",
    "sell_hit_rate",
    "sell_mean_return",
)
#: The accuracy and band metrics of every estimator.
ACCURACY_KEYS: tuple[str, ...] = (
    "mape",
    "rmse",
    "coverage",
    "n",
    "band_coverage",
    "band_below",
    "band_above",
)
METRIC_KEYS: tuple[str, ...] = ACCURACY_KEYS + SIGNAL_KEYS
BASE_KEYS: tuple[str, ...] = ("n", "buy_rate", "sell_rate", "up_rate", "mean_return")
#: Nominal levels of the low, fair and high values (their calibration targets).
CALIBRATION_LEVELS: tuple[float, float, float] = (0.10, 0.50, 0.90)
ESTIMATOR_ORDER: tuple[str, ...] = (
    "model",
    "last_price",
    "rolling_mean_3",
    "rolling_median_7",
    "ewm",
)
DEFAULT_TEST_FRACTION = 0.3
DEFAULT_FOLDS = 3


def _pairs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    ok = np.isfinite(t) & np.isfinite(p)
    return t[ok], p[ok]


def mape(y_true: Any, y_pred: Any) -> float | None:
    """Mean absolute percentage error as a fraction, over pairs that are both finite."""
    t, p = _pairs(y_true, y_pred)
    ok = t != 0
    if not ok.any():
        return None
    return float(np.mean(np.abs(p[ok] - t[ok]) / np.abs(t[ok])))


def rmse(y_true: Any, y_pred: Any) -> float | None:
    """Root mean squared error (price units), over pairs that are both finite."""
    t, p = _pairs(y_true, y_pred)
    if len(t) == 0:
        return None
    return float(np.sqrt(np.mean((p - t) ** 2)))


def precision_recall(predicted: Any, actual: Any) -> tuple[float | None, float | None]:
    """Precision and recall of boolean predictions; ``None`` when a denominator is 0."""
    pred = np.asarray(predicted, dtype=bool)
    act = np.asarray(actual, dtype=bool)
    hits = int(np.sum(pred & act))
    n_pred, n_act = int(pred.sum()), int(act.sum())
    return (hits / n_pred if n_pred else None, hits / n_act if n_act else None)


def _share(mask: np.ndarray, within: np.ndarray) -> float | None:
    n = int(within.sum())
    return float(np.sum(mask & within) / n) if n else None


def _mean(values: np.ndarray, within: np.ndarray) -> float | None:
    return float(np.mean(values[within])) if within.any() else None


def signal_rate(signals: Any) -> float | None:
    """Share of card-days with a BUY or SELL signal."""
    s = np.asarray(signals, dtype=object)
    if len(s) == 0:
        return None
    return float(np.mean((s == BUY) | (s == SELL)))


def flip_rate(card_ids: Any, dates: Any, signals: Any) -> float | None:
    """Share of card-days whose signal differs from the same card's previous scored day.

    "Previous day" is the previous scored card-day of that card (gaps are skipped); a
    card's first scored day has no predecessor and is not counted.
    """
    card = pd.factorize(np.asarray(card_ids, dtype=object))[0]
    day = pd.to_datetime(np.asarray(dates)).to_numpy().astype("datetime64[D]").astype(np.int64)
    sig = pd.factorize(np.asarray(signals, dtype=object))[0]
    order = np.lexsort((day, card))
    card, sig = card[order], sig[order]
    same_card = card[1:] == card[:-1]
    n = int(same_card.sum())
    if n == 0:
        return None
    return float(np.sum(same_card & (sig[1:] != sig[:-1])) / n)


def coverage(fair: Any) -> float | None:
    """Share of evaluable card-days with a usable (finite, positive) fair price."""
    f = np.asarray(fair, dtype=float)
    if len(f) == 0:
        return None
    return float(np.mean(np.isfinite(f) & (f > 0)))


def signal_metrics(
    sig: np.ndarray, happened: dict[str, np.ndarray], card_ids: Any, dates: Any
) -> dict[str, float | int | None]:
    """``SIGNAL_KEYS`` for signals ``sig`` given what happened (``signals.outcomes``)."""
    out: dict[str, float | int | None] = {
        "signal_rate": signal_rate(sig),
        "flip_rate": flip_rate(card_ids, dates, sig),
    }
    for side, event, moved in (("buy", "rose", "up"), ("sell", "fell", "down")):
        fired = sig == (BUY if side == "buy" else SELL)
        precision, recall = precision_recall(fired, happened[event])
        out[f"{side}_n"] = int(fired.sum())
        out[f"{side}_precision"] = precision
        out[f"{side}_recall"] = recall
        out[f"{side}_hit_rate"] = _share(happened[moved], fired)
        out[f"{side}_mean_return"] = _mean(happened["ret"], fired)
    return out


def base_rates(market: Any, realised: Any, config: SignalConfig) -> dict[str, float | int | None]:
    """How often a BUY / SELL would have been right, and the mean move, over all rows."""
    happened = outcomes(market, realised, config)
    known = np.isfinite(happened["ret"])
    return {
        "n": int(known.sum()),
        "buy_rate": _share(happened["rose"], known),
        "sell_rate": _share(happened["fell"], known),
        "up_rate": _share(happened["up"], known),
        "mean_return": _mean(happened["ret"], known),
    }


def band_metrics(target: np.ndarray, band: Band) -> dict[str, Any]:
    """Share of realised medians inside, below and above the band, and calibration."""
    fair, low, high = (np.asarray(v, dtype=float) for v in band)
    has_band = np.isfinite(low) & np.isfinite(high)
    inside = has_band & (target >= low) & (target <= high)
    return {
        "band_coverage": _share(inside, has_band),
        "band_below": _share(has_band & (target < low), has_band),
        "band_above": _share(has_band & (target > high), has_band),
        "calibration": {
            "levels": list(CALIBRATION_LEVELS),
            "observed": [
                _share(np.isfinite(v) & (target < v), np.isfinite(v)) for v in (low, fair, high)
            ],
        },
    }


def score_predictions(
    frame: pd.DataFrame, band: Band | np.ndarray, config: SignalConfig | None = None
) -> dict[str, Any]:
    """All backtest metrics of an estimator's predictions on evaluable rows.

    ``frame`` needs ``card_id, date, market_price, target``; rows with no target are
    ignored (not evaluable). Rows with no fair price lower ``coverage`` and get HOLD.
    A bare array of fair prices counts as a band-less prediction.
    """
    config = config or SignalConfig()
    if not isinstance(band, Band):
        fair = np.asarray(band, dtype=float)
        band = Band(fair, np.full_like(fair, np.nan), np.full_like(fair, np.nan))
    target = frame[TARGET_COLUMN].to_numpy(dtype=float)
    keep = np.isfinite(target)
    t = target[keep]
    kept = Band(*(np.asarray(v, dtype=float)[keep] for v in band))
    f = kept.fair
    usable = np.isfinite(f) & (f > 0)
    f = np.where(usable, f, np.nan)
    market = frame["market_price"].to_numpy(dtype=float)[keep]
    card_ids = frame["card_id"].to_numpy()[keep]
    dates = frame["date"].to_numpy()[keep]
    happened = outcomes(market, t, config)
    rules = {
        rule: signal_metrics(
            signals(market, f, kept.low, kept.high, config.with_rule(rule)),
            happened,
            card_ids,
            dates,
        )
        for rule in RULES
    }
    return {
        "mape": mape(t, f),
        "rmse": rmse(t, f),
        "coverage": coverage(f),
        "n": int(keep.sum()),
        **band_metrics(t, kept),
        **rules[config.rule],
        "rules": rules,
    }


def fold_cuts(
    dates: Sequence[Any] | pd.Series,
    cut: str | pd.Timestamp | None = None,
    folds: int = DEFAULT_FOLDS,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> list[pd.Timestamp]:
    """Start dates of the walk-forward folds, first cut first.

    Without ``cut`` the first cut is the distinct date at position
    ``floor(n * (1 - test_fraction))``, so the last ``test_fraction`` of the distinct
    dates are out of sample. The dates from the first cut on are split into ``folds``
    consecutive blocks of (nearly) equal numbers of distinct dates.
    """
    uniq = np.sort(pd.to_datetime(pd.Series(dates)).dt.normalize().unique())
    n = len(uniq)
    if n < 2:
        raise ValueError("need at least two distinct dates to backtest")
    if cut is None:
        first = min(max(int(np.floor(n * (1.0 - test_fraction))), 1), n - 1)
        start = pd.Timestamp(uniq[first])
    else:
        start = pd.Timestamp(cut).normalize()
        first = int(np.searchsorted(uniq, start.to_datetime64()))
        if first >= n:
            raise ValueError(f"no dates on or after cut {start.date()}")
    later = uniq[first:]
    k = max(1, min(int(folds), len(later)))
    return [start] + [pd.Timestamp(later[len(later) * j // k]) for j in range(1, k)]


def training_mask(dates: pd.Series, cut: pd.Timestamp, horizon: int) -> np.ndarray:
    """Rows whose whole target window t+1..t+H lies strictly before ``cut``."""
    last_target_day = pd.to_datetime(dates) + pd.Timedelta(days=int(horizon))
    return (last_target_day < pd.Timestamp(cut)).to_numpy()


def _feature_frame(prices: pd.DataFrame, horizon: int) -> pd.DataFrame:
    frame = build_features(prices, horizon)
    frame[TARGET_COLUMN] = build_target(prices, horizon).to_numpy()
    return frame


def _time_splits(
    frame: pd.DataFrame, cuts: list[pd.Timestamp], horizon: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row masks: train before each cut, test until the next cut."""
    dates = frame["date"]
    ends = [*cuts[1:], pd.Timestamp.max]
    return [
        (training_mask(dates, start, horizon), ((dates >= start) & (dates < end)).to_numpy())
        for start, end in zip(cuts, ends, strict=True)
    ]


def _evaluate(
    frame: pd.DataFrame,
    splits: list[tuple[np.ndarray, np.ndarray]],
    factory: Callable[[], dict[str, FairValueEstimator]],
    config: SignalConfig,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Fit fresh estimators on each train mask, predict its test mask, pool and score.

    Returns the metrics per estimator and the base rates of the pooled test rows.
    """
    tests: list[pd.DataFrame] = []
    bands: dict[str, list[Band]] = {}
    for train_mask, test_mask in splits:
        # Only evaluable rows are scored; slim copies keep memory flat on big universes.
        test = frame.loc[test_mask & frame[TARGET_COLUMN].notna().to_numpy()]
        if test.empty:
            continue
        train = frame.iloc[_training_rows(train_mask & frame[TARGET_COLUMN].notna().to_numpy())]
        for name, est in factory().items():
            try:
                band = est.fit(train).predict_band(test)
            except NoTrainingData:  # nothing to learn from yet: no prediction (coverage)
                band = Band(*(np.full(len(test), np.nan) for _ in range(3)))
            bands.setdefault(name, []).append(band)
        del train
        tests.append(test[["card_id", "date", "market_price", TARGET_COLUMN]])
    if not tests:
        empty = Band(np.empty(0), np.empty(0), np.empty(0))
        tests, bands = [frame.iloc[:0]], {name: [empty] for name in factory()}
    test_all = pd.concat(tests)
    names = sorted(bands, key=lambda k: (*ESTIMATOR_ORDER, k).index(k))
    metrics = {
        name: score_predictions(
            test_all, Band(*(np.concatenate([b[k] for b in bands[name]]) for k in range(3))), config
        )
        for name in names
    }
    base = base_rates(test_all["market_price"], test_all[TARGET_COLUMN], config)
    return metrics, base


#: Most training rows a fold copies out of the frame. The model samples far fewer
#: (``max_train_rows``); capping the copy first keeps a 7M-row backtest's memory flat.
TRAIN_ROWS_CAP = 1_000_000


def _training_rows(mask: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(mask)
    if len(rows) > TRAIN_ROWS_CAP:
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(rows, size=TRAIN_ROWS_CAP, replace=False))
    return rows


def walk_forward_backtest(
    prices: pd.DataFrame,
    horizon: int = 30,
    cut: str | pd.Timestamp | None = None,
    folds: int = DEFAULT_FOLDS,
    signal: SignalConfig | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    estimators: Callable[[], dict[str, FairValueEstimator]] | None = None,
) -> dict[str, Any]:
    """Walk-forward evaluation of the model and the baselines (DESIGN.md section 4).

    Returns ``{"horizon": H, "cut": "YYYY-MM-DD", "signal_rule": rule, "base": {...},
    "estimators": {name: metrics}}`` with the keys of ``METRIC_KEYS`` (and ``rules``,
    ``calibration``) for ``model, last_price, rolling_mean_3, rolling_median_7, ewm``.
    ``estimators`` is a factory of fresh, unfitted estimators (default
    ``default_estimators`` for this horizon), called once per fold.
    """
    return backtest_feature_frame(
        _feature_frame(prices, horizon),
        horizon=horizon,
        cut=cut,
        folds=folds,
        signal=signal,
        test_fraction=test_fraction,
        estimators=estimators,
    )


def _factory(
    estimators: Callable[[], dict[str, FairValueEstimator]] | None, horizon: int
) -> Callable[[], dict[str, FairValueEstimator]]:
    return estimators or (lambda: default_estimators(horizon=horizon))


def _result(
    horizon: int,
    cuts: list[pd.Timestamp],
    config: SignalConfig,
    evaluated: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    metrics, base = evaluated
    return {
        "horizon": int(horizon),
        "cut": cuts[0].strftime("%Y-%m-%d"),
        "signal_rule": config.rule,
        "base": base,
        "estimators": metrics,
    }


def backtest_feature_frame(
    frame: pd.DataFrame,
    horizon: int = 30,
    cut: str | pd.Timestamp | None = None,
    folds: int = DEFAULT_FOLDS,
    signal: SignalConfig | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    estimators: Callable[[], dict[str, FairValueEstimator]] | None = None,
) -> dict[str, Any]:
    """:func:`walk_forward_backtest` on an already built feature frame (with ``target``).

    Features are point-in-time, so the pipeline builds them once and shares them between
    training and evaluation instead of building them twice.
    """
    config = signal or SignalConfig()
    cuts = fold_cuts(frame["date"], cut, folds, test_fraction)
    splits = _time_splits(frame, cuts, horizon)
    return _result(
        horizon, cuts, config, _evaluate(frame, splits, _factory(estimators, horizon), config)
    )


def card_groups(card_ids: Any, groups: int) -> np.ndarray:
    """Deterministic group (0..groups-1) of each card id, from a CRC32 of the id."""
    ids = pd.Series(np.asarray(card_ids, dtype=object))
    uniq = ids.unique()
    group_of = {c: zlib.crc32(str(c).encode("utf-8")) % groups for c in uniq}
    return ids.map(group_of).to_numpy(dtype=np.int64)


def leave_cards_out_backtest(
    prices: pd.DataFrame,
    horizon: int = 30,
    cut: str | pd.Timestamp | None = None,
    folds: int = DEFAULT_FOLDS,
    groups: int = 3,
    signal: SignalConfig | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    estimators: Callable[[], dict[str, FairValueEstimator]] | None = None,
) -> dict[str, Any]:
    """Walk-forward *and* leave-cards-out: the model never sees the scored products.

    Cards are split into ``groups`` by ``card_groups``; for each fold and group the model
    trains on the other groups' card-days before the cut and scores this group's
    card-days after it. Same JSON shape as ``walk_forward_backtest`` plus ``"groups"``.
    (With the optional market features, those still see every card: they describe the
    market, not the product.)
    """
    return leave_cards_out_feature_frame(
        _feature_frame(prices, horizon),
        horizon=horizon,
        cut=cut,
        folds=folds,
        groups=groups,
        signal=signal,
        test_fraction=test_fraction,
        estimators=estimators,
    )


def leave_cards_out_feature_frame(
    frame: pd.DataFrame,
    horizon: int = 30,
    cut: str | pd.Timestamp | None = None,
    folds: int = DEFAULT_FOLDS,
    groups: int = 3,
    signal: SignalConfig | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    estimators: Callable[[], dict[str, FairValueEstimator]] | None = None,
) -> dict[str, Any]:
    """:func:`leave_cards_out_backtest` on an already built feature frame."""
    config = signal or SignalConfig()
    cuts = fold_cuts(frame["date"], cut, folds, test_fraction)
    group = card_groups(frame["card_id"], groups)
    splits = [
        (train & (group != g), test & (group == g))
        for train, test in _time_splits(frame, cuts, horizon)
        for g in range(groups)
    ]
    evaluated = _evaluate(frame, splits, _factory(estimators, horizon), config)
    return {**_result(horizon, cuts, config, evaluated), "groups": int(groups)}
