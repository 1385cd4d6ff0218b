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

In three parts, so that the pipeline can run the middle one on card shards
(``pipelines.sharding``): the fold models are fitted on a *sample* of the training rows
(:func:`fold_estimators`; the model itself never uses more than 300k), every shard's test
rows are predicted and tallied (:func:`tally_folds`), and the tallies are added and
divided (:func:`finalize_backtest`; ``pipelines.metrics``).
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
from pipelines.metrics import Tally, add, finalize, finalize_base, tally, tally_base
from pipelines.signals import SignalConfig

ESTIMATOR_ORDER: tuple[str, ...] = (
    "model",
    "last_price",
    "rolling_mean_3",
    "rolling_median_7",
    "ewm",
)
DEFAULT_TEST_FRACTION = 0.3
DEFAULT_FOLDS = 3
#: Most training rows the fold models see, whatever the universe (the model samples at
#: most ``max_train_rows`` of them).
TRAIN_ROWS_CAP = 1_000_000


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


def training_sample(frame: pd.DataFrame, cap: int = TRAIN_ROWS_CAP) -> pd.DataFrame:
    """The rows with a target, at most ``cap`` of them (a seeded, sorted sample)."""
    rows = np.flatnonzero(frame[TARGET_COLUMN].notna().to_numpy())
    if len(rows) > cap:
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(rows, size=cap, replace=False))
    return frame.iloc[rows]


FoldModels = list[dict[str, FairValueEstimator | None]]


def fold_estimators(
    sample: pd.DataFrame,
    cuts: list[pd.Timestamp],
    horizon: int,
    factory: Callable[[], dict[str, FairValueEstimator]],
) -> FoldModels:
    """For each fold, fresh estimators fitted on the sample rows before its cut
    (``None`` for one with nothing to learn from yet: it predicts nothing)."""
    folds: FoldModels = []
    for cut in cuts:
        train = sample[training_mask(sample["date"], cut, horizon)]
        fitted: dict[str, FairValueEstimator | None] = {}
        for name, est in factory().items():
            try:
                fitted[name] = est.fit(train)
            except NoTrainingData:
                fitted[name] = None
        folds.append(fitted)
    return folds


def tally_folds(
    frame: pd.DataFrame,
    cuts: list[pd.Timestamp],
    models: FoldModels,
    config: SignalConfig,
) -> tuple[dict[str, Tally], Tally]:
    """Tallies of every estimator's predictions of ``frame``'s scored rows (each fold's
    rows by that fold's models), and of the base rates. ``frame`` holds every row of its
    cards (a shard, or everything) so that a card's flips are counted across folds."""
    ends = [*cuts[1:], pd.Timestamp.max]
    dates = frame["date"]
    evaluable = frame[TARGET_COLUMN].notna().to_numpy()
    tests: list[pd.DataFrame] = []
    bands: dict[str, list[Band]] = {name: [] for name in models[0]} if models else {}
    for start, end, fitted in zip(cuts, ends, models, strict=True):
        test = frame.loc[((dates >= start) & (dates < end)).to_numpy() & evaluable]
        if test.empty:
            continue
        for name, est in fitted.items():
            if est is None:
                band = Band(*(np.full(len(test), np.nan) for _ in range(3)))
            else:
                band = est.predict_band(test)
            bands[name].append(band)
        tests.append(test[["card_id", "date", "market_price", TARGET_COLUMN]])
    if not tests:
        return {name: tally(frame.iloc[:0], np.empty(0), config) for name in bands}, {}
    scored = pd.concat(tests)
    tallies = {
        name: tally(
            scored, Band(*(np.concatenate([b[k] for b in parts]) for k in range(3))), config
        )
        for name, parts in bands.items()
    }
    return tallies, tally_base(scored["market_price"], scored[TARGET_COLUMN], config)


def finalize_backtest(
    horizon: int,
    cuts: list[pd.Timestamp],
    config: SignalConfig,
    tallies: list[dict[str, Tally]],
    bases: list[Tally],
) -> dict[str, Any]:
    """The backtest JSON from the tallies of every shard (or of one pass over all)."""
    names = sorted({n for t in tallies for n in t}, key=lambda k: (*ESTIMATOR_ORDER, k).index(k))
    return {
        "horizon": int(horizon),
        "cut": cuts[0].strftime("%Y-%m-%d"),
        "signal_rule": config.rule,
        "base": finalize_base(add(bases)),
        "estimators": {
            name: finalize(add(t[name] for t in tallies if name in t), config.rule)
            for name in names
        },
    }


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


def backtest_feature_frame(
    frame: pd.DataFrame,
    horizon: int = 30,
    cut: str | pd.Timestamp | None = None,
    folds: int = DEFAULT_FOLDS,
    signal: SignalConfig | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    estimators: Callable[[], dict[str, FairValueEstimator]] | None = None,
) -> dict[str, Any]:
    """:func:`walk_forward_backtest` on an already built feature frame (with ``target``),
    in one pass (the pipeline does the same over card shards)."""
    config = signal or SignalConfig()
    cuts = fold_cuts(frame["date"], cut, folds, test_fraction)
    models = fold_estimators(training_sample(frame), cuts, horizon, _factory(estimators, horizon))
    tallies, base = tally_folds(frame, cuts, models, config)
    return finalize_backtest(horizon, cuts, config, [tallies], [base])


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
    factory = _factory(estimators, horizon)
    tallies, bases = [], []
    for g in range(groups):
        models = fold_estimators(training_sample(frame[group != g]), cuts, horizon, factory)
        t, b = tally_folds(frame[group == g], cuts, models, config)
        tallies.append(t)
        bases.append(b)
    return {**finalize_backtest(horizon, cuts, config, tallies, bases), "groups": int(groups)}
