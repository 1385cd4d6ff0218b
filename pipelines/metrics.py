"""Backtest metrics as additive tallies (DESIGN.md section 4).

Every metric of the walk-forward backtest is a ratio of sums over scored card-days: MAPE
is a sum of absolute percentage errors over a count, a precision is a count of right
signals over a count of signals, a flip rate is a count of changes over a count of
consecutive pairs of a card. So they are computed in two steps: :func:`tally` turns the
predictions of some rows into a flat dict of sums, tallies of separate rows add up with
:func:`add`, and :func:`finalize` divides. A backtest over card shards (one tally per
shard, possibly on other machines) then gives exactly the numbers of one pass over all
the rows, as long as each card's rows are all in one shard (for its flips).

Metrics are fractions (not percents), ``None`` where undefined (nothing to divide by).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipelines.estimators import Band
from pipelines.features import TARGET_COLUMN
from pipelines.signals import BUY, RULES, SELL, SignalConfig, outcomes, signals

#: The signal metrics reported per rule.
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
_SIDES = (("buy", BUY, "rose", "up"), ("sell", SELL, "fell", "down"))

Tally = dict[str, float]


def add(tallies: Iterable[Mapping[str, float]]) -> Tally:
    """The sum of tallies, key by key."""
    total: Tally = {}
    for tally_ in tallies:
        for key, value in tally_.items():
            total[key] = total.get(key, 0.0) + value
    return total


def flip_counts(card_ids: Any, dates: Any, sigs: Any) -> tuple[int, int]:
    """(changes, pairs): each card-day against the same card's previous scored day.

    "Previous day" is the previous scored card-day of that card (gaps are skipped); a
    card's first scored day has no predecessor and is not counted.
    """
    card = pd.factorize(np.asarray(card_ids, dtype=object))[0]
    day = pd.to_datetime(np.asarray(dates)).to_numpy().astype("datetime64[D]").astype(np.int64)
    sig = pd.factorize(np.asarray(sigs, dtype=object))[0]
    order = np.lexsort((day, card))
    card, sig = card[order], sig[order]
    same_card = card[1:] == card[:-1]
    return int(np.sum(same_card & (sig[1:] != sig[:-1]))), int(same_card.sum())


def tally(
    frame: pd.DataFrame, band: Band | np.ndarray, config: SignalConfig | None = None
) -> Tally:
    """The sums behind every metric of one estimator's predictions on ``frame``'s rows.

    ``frame`` needs ``card_id, date, market_price, target``; rows without a target are
    not evaluable and ignored. A bare array of fair prices is a band-less prediction.
    """
    config = config or SignalConfig()
    if not isinstance(band, Band):
        fair = np.asarray(band, dtype=float)
        band = Band(fair, np.full_like(fair, np.nan), np.full_like(fair, np.nan))
    target = frame[TARGET_COLUMN].to_numpy(dtype=float)
    keep = np.isfinite(target)
    t = target[keep]
    fair, low, high = (np.asarray(v, dtype=float)[keep] for v in band)
    usable = np.isfinite(fair) & (fair > 0)
    fair = np.where(usable, fair, np.nan)
    market = frame["market_price"].to_numpy(dtype=float)[keep]
    has_band = np.isfinite(low) & np.isfinite(high)
    with np.errstate(invalid="ignore", divide="ignore"):
        ape = np.abs(fair - t) / t
    out: Tally = {
        "n": float(keep.sum()),
        "fair_n": float(usable.sum()),
        "ape_sum": float(np.sum(ape[usable])),
        "sq_sum": float(np.sum((fair[usable] - t[usable]) ** 2)),
        "band_n": float(has_band.sum()),
        "band_inside": float(np.sum(has_band & (t >= low) & (t <= high))),
        "band_below": float(np.sum(has_band & (t < low))),
        "band_above": float(np.sum(has_band & (t > high))),
    }
    for name, values in (("low", low), ("fair", fair), ("high", high)):
        known = np.isfinite(values)
        out[f"cal_{name}_n"] = float(known.sum())
        out[f"cal_{name}_below"] = float(np.sum(known & (t < values)))
    happened = outcomes(market, t, config)
    card_ids = frame["card_id"].to_numpy()[keep]
    dates = frame["date"].to_numpy()[keep]
    for rule in RULES:
        sig = signals(market, fair, low, high, config.with_rule(rule))
        flips, pairs = flip_counts(card_ids, dates, sig)
        out[f"{rule}.signals"] = float(np.sum((sig == BUY) | (sig == SELL)))
        out[f"{rule}.flips"], out[f"{rule}.pairs"] = float(flips), float(pairs)
        for side, label, event, moved in _SIDES:
            fired = sig == label
            out[f"{rule}.{side}_n"] = float(fired.sum())
            out[f"{rule}.{side}_right"] = float(np.sum(fired & happened[event]))
            out[f"{rule}.{side}_events"] = float(happened[event].sum())
            out[f"{rule}.{side}_moved"] = float(np.sum(fired & happened[moved]))
            out[f"{rule}.{side}_ret_sum"] = float(np.nansum(happened["ret"][fired]))
    return out


def tally_base(market: Any, realised: Any, config: SignalConfig) -> Tally:
    """The sums behind the base rates: the same events over every scored card-day."""
    happened = outcomes(market, realised, config)
    known = np.isfinite(happened["ret"])
    return {
        "n": float(known.sum()),
        "rose": float(np.sum(happened["rose"] & known)),
        "fell": float(np.sum(happened["fell"] & known)),
        "up": float(np.sum(happened["up"] & known)),
        "ret_sum": float(np.sum(happened["ret"][known])),
    }


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def finalize(t: Mapping[str, float], rule: str) -> dict[str, Any]:
    """The metrics of a tally: ``METRIC_KEYS`` (the signal ones of ``rule``), ``calibration``
    and ``rules`` (the signal metrics of every rule)."""
    rules = {name: _signal_metrics(t, name) for name in RULES}
    n = t.get("n", 0.0)
    return {
        "mape": _ratio(t.get("ape_sum", 0.0), t.get("fair_n", 0.0)),
        "rmse": (float(np.sqrt(t["sq_sum"] / t["fair_n"])) if t.get("fair_n") else None),
        "coverage": _ratio(t.get("fair_n", 0.0), n),
        "n": int(n),
        "band_coverage": _ratio(t.get("band_inside", 0.0), t.get("band_n", 0.0)),
        "band_below": _ratio(t.get("band_below", 0.0), t.get("band_n", 0.0)),
        "band_above": _ratio(t.get("band_above", 0.0), t.get("band_n", 0.0)),
        "calibration": {
            "levels": list(CALIBRATION_LEVELS),
            "observed": [
                _ratio(t.get(f"cal_{name}_below", 0.0), t.get(f"cal_{name}_n", 0.0))
                for name in ("low", "fair", "high")
            ],
        },
        **rules[rule],
        "rules": rules,
    }


def _signal_metrics(t: Mapping[str, float], rule: str) -> dict[str, Any]:
    def get(key: str) -> float:
        return t.get(f"{rule}.{key}", 0.0)

    out: dict[str, Any] = {
        "signal_rate": _ratio(get("signals"), t.get("n", 0.0)),
        "flip_rate": _ratio(get("flips"), get("pairs")),
    }
    for side, *_ in _SIDES:
        fired = get(f"{side}_n")
        out[f"{side}_n"] = int(fired)
        out[f"{side}_precision"] = _ratio(get(f"{side}_right"), fired)
        out[f"{side}_recall"] = _ratio(get(f"{side}_right"), get(f"{side}_events"))
        out[f"{side}_hit_rate"] = _ratio(get(f"{side}_moved"), fired)
        out[f"{side}_mean_return"] = _ratio(get(f"{side}_ret_sum"), fired)
    return out


def finalize_base(t: Mapping[str, float]) -> dict[str, Any]:
    n = t.get("n", 0.0)
    return {
        "n": int(n),
        "buy_rate": _ratio(t.get("rose", 0.0), n),
        "sell_rate": _ratio(t.get("fell", 0.0), n),
        "up_rate": _ratio(t.get("up", 0.0), n),
        "mean_return": _ratio(t.get("ret_sum", 0.0), n),
    }


def score_predictions(
    frame: pd.DataFrame, band: Band | np.ndarray, config: SignalConfig | None = None
) -> dict[str, Any]:
    """All backtest metrics of one estimator's predictions on evaluable rows."""
    config = config or SignalConfig()
    return finalize(tally(frame, band, config), config.rule)


def base_rates(market: Any, realised: Any, config: SignalConfig) -> dict[str, Any]:
    """How often a BUY / SELL would have been right, and the mean move, over all rows."""
    return finalize_base(tally_base(market, realised, config))
