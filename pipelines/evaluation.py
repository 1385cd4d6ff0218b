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
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipelines.estimators import (
    BUY,
    SELL,
    FairValueEstimator,
    NoTrainingData,
    default_estimators,
    signal_for,
)
from pipelines.features import TARGET_COLUMN, build_features, build_target

METRIC_KEYS: tuple[str, ...] = (
    "mape",
    "rmse",
    "buy_precision",
    "buy_recall",
    "sell_precision",
    "sell_recall",
    "signal_rate",
    "flip_rate",
    "coverage",
    "n",
)
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


def realised_moves(
    market: Any, target: Any, buy_threshold: float = 0.10, sell_threshold: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """(rose, fell): the horizon median rose by >= buy / fell by >= sell vs the market."""
    m = np.asarray(market, dtype=float)
    t = np.asarray(target, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = t / m - 1.0
    ok = np.isfinite(change)
    return ok & (change >= buy_threshold), ok & (change <= -sell_threshold)


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


def score_predictions(
    frame: pd.DataFrame,
    fair: Any,
    buy_threshold: float = 0.10,
    sell_threshold: float = 0.15,
) -> dict[str, float | int | None]:
    """All backtest metrics for fair prices on evaluable rows.

    ``frame`` needs ``card_id, date, market_price, target``; rows with no target are
    ignored (not evaluable). Rows with no fair price lower ``coverage`` and get HOLD.
    """
    target = frame[TARGET_COLUMN].to_numpy(dtype=float)
    keep = np.isfinite(target)
    f = np.asarray(fair, dtype=float)[keep]
    market = frame["market_price"].to_numpy(dtype=float)[keep]
    t = target[keep]
    usable = np.isfinite(f) & (f > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.where(usable, (market - f) / f, np.nan)
    signals = signal_for(dev, buy=buy_threshold, sell=sell_threshold)
    rose, fell = realised_moves(market, t, buy_threshold, sell_threshold)
    buy_p, buy_r = precision_recall(signals == BUY, rose)
    sell_p, sell_r = precision_recall(signals == SELL, fell)
    return {
        "mape": mape(t, f),
        "rmse": rmse(t, f),
        "buy_precision": buy_p,
        "buy_recall": buy_r,
        "sell_precision": sell_p,
        "sell_recall": sell_r,
        "signal_rate": signal_rate(signals),
        "flip_rate": flip_rate(
            frame["card_id"].to_numpy()[keep], frame["date"].to_numpy()[keep], signals
        ),
        "coverage": coverage(f),
        "n": int(keep.sum()),
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
    buy_threshold: float,
    sell_threshold: float,
) -> dict[str, dict[str, float | int | None]]:
    """Fit fresh estimators on each train mask, predict its test mask, pool and score."""
    tests: list[pd.DataFrame] = []
    fair: dict[str, list[np.ndarray]] = {}
    for train_mask, test_mask in splits:
        # Only evaluable rows are scored; slim copies keep memory flat on big universes.
        test = frame.loc[test_mask & frame[TARGET_COLUMN].notna().to_numpy()]
        if test.empty:
            continue
        train = frame.iloc[_training_rows(train_mask & frame[TARGET_COLUMN].notna().to_numpy())]
        for name, est in factory().items():
            try:
                pred = est.fit(train).predict(test)
            except NoTrainingData:  # nothing to learn from yet: no prediction (coverage)
                pred = np.full(len(test), np.nan)
            fair.setdefault(name, []).append(pred)
        del train
        tests.append(test[["card_id", "date", "market_price", TARGET_COLUMN]])
    if not tests:
        tests, fair = [frame.iloc[:0]], {name: [np.empty(0)] for name in factory()}
    test_all = pd.concat(tests)
    names = sorted(fair, key=lambda k: (*ESTIMATOR_ORDER, k).index(k))
    return {
        name: score_predictions(test_all, np.concatenate(fair[name]), buy_threshold, sell_threshold)
        for name in names
    }


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
    horizon: int = 7,
    cut: str | pd.Timestamp | None = None,
    folds: int = DEFAULT_FOLDS,
    buy_threshold: float = 0.10,
    sell_threshold: float = 0.15,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    estimators: Callable[[], dict[str, FairValueEstimator]] | None = None,
) -> dict[str, Any]:
    """Walk-forward evaluation of the model and the baselines (DESIGN.md section 4).

    Returns ``{"horizon": H, "cut": "YYYY-MM-DD", "estimators": {name: metrics}}`` with
    the keys of ``METRIC_KEYS`` for ``model, last_price, rolling_mean_3,
    rolling_median_7, ewm``. ``estimators`` is a factory of fresh, unfitted estimators
    (default ``default_estimators``), called once per fold.
    """
    return backtest_feature_frame(
        _feature_frame(prices, horizon),
        horizon=horizon,
        cut=cut,
        folds=folds,
        buy_threshold=buy_threshold,
        sell_threshold=sell_threshold,
        test_fraction=test_fraction,
        estimators=estimators,
    )


def backtest_feature_frame(
    frame: pd.DataFrame,
    horizon: int = 7,
    cut: str | pd.Timestamp | None = None,
    folds: int = DEFAULT_FOLDS,
    buy_threshold: float = 0.10,
    sell_threshold: float = 0.15,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    estimators: Callable[[], dict[str, FairValueEstimator]] | None = None,
) -> dict[str, Any]:
    """:func:`walk_forward_backtest` on an already built feature frame (with ``target``).

    Features are point-in-time, so the pipeline builds them once and shares them between
    training and evaluation instead of building them twice.
    """
    cuts = fold_cuts(frame["date"], cut, folds, test_fraction)
    splits = _time_splits(frame, cuts, horizon)
    results = _evaluate(
        frame, splits, estimators or default_estimators, buy_threshold, sell_threshold
    )
    return {"horizon": int(horizon), "cut": cuts[0].strftime("%Y-%m-%d"), "estimators": results}


def card_groups(card_ids: Any, groups: int) -> np.ndarray:
    """Deterministic group (0..groups-1) of each card id, from a CRC32 of the id."""
    ids = pd.Series(np.asarray(card_ids, dtype=object))
    uniq = ids.unique()
    group_of = {c: zlib.crc32(str(c).encode("utf-8")) % groups for c in uniq}
    return ids.map(group_of).to_numpy(dtype=np.int64)


def leave_cards_out_backtest(
    prices: pd.DataFrame,
    horizon: int = 7,
    cut: str | pd.Timestamp | None = None,
    folds: int = DEFAULT_FOLDS,
    groups: int = 3,
    buy_threshold: float = 0.10,
    sell_threshold: float = 0.15,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    estimators: Callable[[], dict[str, FairValueEstimator]] | None = None,
) -> dict[str, Any]:
    """Walk-forward *and* leave-cards-out: the model never sees the scored products.

    Cards are split into ``groups`` by ``card_groups``; for each fold and group the model
    trains on the other groups' card-days before the cut and scores this group's
    card-days after it. Same JSON shape as ``walk_forward_backtest`` plus ``"groups"``.
    """
    frame = _feature_frame(prices, horizon)
    cuts = fold_cuts(frame["date"], cut, folds, test_fraction)
    group = card_groups(frame["card_id"], groups)
    splits = [
        (train & (group != g), test & (group == g))
        for train, test in _time_splits(frame, cuts, horizon)
        for g in range(groups)
    ]
    results = _evaluate(
        frame, splits, estimators or default_estimators, buy_threshold, sell_threshold
    )
    return {
        "horizon": int(horizon),
        "cut": cuts[0].strftime("%Y-%m-%d"),
        "groups": int(groups),
        "estimators": results,
    }
