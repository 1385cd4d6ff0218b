"""Point-in-time features and the fair-value target for daily card prices.

Plain pandas/numpy (no Django). Everything is vectorised over all cards at once.

Missing days
    Each card is laid on a *daily calendar* from its first to its last observation
    (``_DailyGrid``). Missing days get no observed price; windows that need a price level
    use the last observed price (forward fill, no limit: a gap is never filled with a
    future value) and the staleness is made explicit by ``gap_prev`` (days since the
    previous observation) and ``obs_frac_*`` (share of observed days in a window).
    Features are then read back only on observed card-days: a prediction is always made
    for a day that has a market price.

Short histories / new cards
    Windows use the history available so far (partial windows) except log returns,
    which are NaN until the card has the full lag. ``history_days`` (capped at the
    longest window, so that it only means "short history" and never encodes calendar
    time) tells the model how much history there is. The gradient-boosting model handles
    NaN natively, so a card is scored from its very first day.

Target
    ``build_target``: median of the *observed* prices on days t+1 .. t+H. It is NaN when
    the card's series ends before t+H (the window is not fully observable yet) or when
    fewer than ``ceil(H / 2)`` of those H days have a price (too gappy to be a reliable
    median).

Window lengths are tied to the horizon H (H, 2H, 4H) so the features keep their meaning
when H changes; column names use ``h`` (``ret_h``, ``ret_4h`` ...) and are the same for
every H. A few short windows have fixed lengths (``ret_7``, ``ret_14``, ``dev_mean_7``,
``dev_mean_14``, ``vol_7``): recent momentum matters at every horizon.

Market features (``build_features(..., market=True)``)
    ``mkt_ret_*`` are cross-sectional: on day d, the median of ``ret_*`` over every card
    observed on day d. Each of those values uses prices up to d only, and only cards
    *observed* on d count, so a later price of any card (which may extend that card's
    forward-filled calendar) never changes a market feature of an earlier day. They are
    the only features of a card that depend on other cards. The default model does not
    use them (they did not help before the first backtest cut, docs/model.md), so they
    are only computed when asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

KEY_COLUMNS: list[str] = ["card_id", "date", "market_price"]

#: Scale-free features of one card (log ratios, volatilities, recency); no price levels.
CARD_FEATURE_COLUMNS: list[str] = [
    "ret_1",
    "ret_3",
    "ret_7",
    "ret_14",
    "ret_h",
    "ret_2h",
    "ret_4h",
    "dev_mean_3",
    "dev_mean_7",
    "dev_mean_14",
    "dev_mean_h",
    "dev_mean_4h",
    "dev_med_h",
    "dev_med_4h",
    "dev_max_4h",
    "dev_min_4h",
    "vol_7",
    "vol_h",
    "vol_4h",
    "gap_prev",
    "obs_frac_h",
    "obs_frac_4h",
    "history_days",
]

#: Cross-sectional features: the median over the cards observed that day.
MARKET_SOURCES: dict[str, str] = {
    "mkt_ret_3": "ret_3",
    "mkt_ret_h": "ret_h",
    "mkt_ret_2h": "ret_2h",
    "mkt_ret_4h": "ret_4h",
}
MARKET_COLUMNS: list[str] = list(MARKET_SOURCES)

#: The model's features (the market ones are an option: ``build_features(market=True)``).
FEATURE_COLUMNS: list[str] = CARD_FEATURE_COLUMNS

#: Price-level columns used by the baseline estimators (not model features).
BASELINE_COLUMNS: list[str] = ["base_mean_3", "base_median_7", "base_ewm"]

TARGET_COLUMN = "target"

#: Span (in days) of the exponentially weighted mean baseline.
EWM_SPAN_DAYS = 7


def clean_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """Normalise a long price frame: positive prices, day dates, one row per card-day.

    Returns columns ``card_id, date, market_price`` (+ ``category`` if present), sorted by
    ``(card_id, date)`` with a fresh index. Duplicated card-days keep the last row.
    Rows with a missing card, date or a non-positive price are dropped. ``card_id`` is a
    pandas categorical (its categories: the cards present, sorted): millions of rows then
    cost one small integer each, also once a pipeline step has written the frame to its
    artifact store and the next one has read it back.
    """
    card = prices["card_id"]
    if card.dtype != object and not isinstance(card.dtype, pd.CategoricalDtype):
        card = card.astype(str)
    date = pd.to_datetime(prices["date"])
    if date.dt.tz is not None:
        date = date.dt.tz_localize(None)
    date = date.dt.normalize()
    price = pd.to_numeric(prices["market_price"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(price) & (price > 0) & date.notna().to_numpy() & card.notna().to_numpy()
    codes, uniques = pd.factorize(card[ok], sort=True)
    days = date[ok].to_numpy().astype("datetime64[D]").astype(np.int64)
    # Sort by (card, day, original position); keep the last row of each card-day.
    order = np.lexsort((np.arange(len(codes)), days, codes))
    codes, days = codes[order], days[order]
    last = np.ones(len(codes), dtype=bool)
    last[:-1] = (codes[1:] != codes[:-1]) | (days[1:] != days[:-1])
    order, codes, days = order[last], codes[last], days[last]
    out = pd.DataFrame(
        {
            "card_id": pd.Categorical.from_codes(
                codes, categories=pd.Index(np.asarray(uniques, dtype=object))
            ),
            "date": days.astype("datetime64[D]").astype("datetime64[ns]"),
            "market_price": price[ok][order],
        }
    )
    if "category" in prices.columns:
        out["category"] = pd.Categorical(prices["category"].to_numpy()[ok][order])
    return out


def _card_starts(df: pd.DataFrame) -> np.ndarray:
    """True on the first row of each card of a cleaned (sorted) frame."""
    card = df["card_id"]
    values = card.cat.codes.to_numpy() if isinstance(card.dtype, pd.CategoricalDtype) else card
    values = np.asarray(values)
    return np.r_[True, values[1:] != values[:-1]] if len(values) else np.zeros(0, dtype=bool)


def _card_codes(df: pd.DataFrame) -> np.ndarray:
    """0..n-1 card codes of a cleaned (sorted) frame."""
    return (np.cumsum(_card_starts(df)) - 1).astype(np.int64)


@dataclass
class _DailyGrid:
    """All cards on one daily calendar, each block preceded by ``pad`` NaN rows.

    The padding lets one global ``rolling``/``shift`` call serve every card at once: a
    window or lag of at most ``pad`` days that reaches before a card's first day only
    sees NaN padding, never the previous card.
    """

    pad: int
    price: np.ndarray  # observed price, NaN on missing days and on padding
    price_ff: np.ndarray  # forward-filled price, NaN on padding
    is_pad: np.ndarray
    day_index: np.ndarray  # days since the card's first observation (< 0 on padding)
    obs_pos: np.ndarray  # grid position of each row of the cleaned frame
    obs_card: np.ndarray  # card code (0..n-1) of each row of the cleaned frame

    @classmethod
    def build(cls, df: pd.DataFrame, pad: int) -> _DailyGrid:
        codes = _card_codes(df)
        days = df["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        first = days[starts]
        last = days[np.r_[starts[1:], len(days)] - 1]
        block = (last - first + 1) + pad
        offset = np.cumsum(block) - block
        total = int(block.sum())
        obs_pos = offset[codes] + pad + (days - first[codes])

        day_index = np.arange(total) - np.repeat(offset + pad, block)
        is_pad = day_index < 0
        price = np.full(total, np.nan)
        price[obs_pos] = df["market_price"].to_numpy(dtype=float)
        # Forward fill: each card's first real row is observed, so a global fill never
        # carries a price across cards; padding is reset to NaN afterwards.
        idx = np.where(np.isnan(price), 0, np.arange(total))
        np.maximum.accumulate(idx, out=idx)
        price_ff = price[idx]
        price_ff[is_pad] = np.nan
        return cls(pad, price, price_ff, is_pad, day_index, obs_pos, codes)

    def at_obs(self, values: np.ndarray | pd.Series, dtype: type = np.float32) -> np.ndarray:
        """Values of a grid-length array on the observed card-days."""
        return np.asarray(values)[self.obs_pos].astype(dtype, copy=False)

    def ewm_at_obs(self, span: int) -> np.ndarray:
        """Each card's exponentially weighted mean (``adjust=True``) of its forward-filled
        daily price, on the observed card-days.

        The cards' days are laid side by side in a (cards x days) matrix and the weighted
        sums are carried forward one day at a time for every card at once: the same
        numbers as ``pandas`` ``groupby(card).ewm(span).mean()``, without the groupby's
        multi-million-row index (the largest allocation of the whole feature build).
        """
        real = ~self.is_pad
        days = self.day_index[real]
        cards = np.cumsum(days == 0) - 1
        daily = np.full((int(cards[-1]) + 1, int(days.max()) + 1), np.nan)
        daily[cards, days] = self.price_ff[real]
        del real, days, cards
        decay = 1.0 - 2.0 / (span + 1.0)
        num = np.zeros(daily.shape[0])
        den = np.zeros(daily.shape[0])
        for day in range(daily.shape[1]):
            column = daily[:, day]
            seen = ~np.isnan(column)
            num = num * decay + np.where(seen, column, 0.0)
            den = den * decay + seen
            with np.errstate(invalid="ignore", divide="ignore"):
                daily[:, day] = num / den
        return daily[self.obs_card, self.day_index[self.obs_pos]]


def _windows(horizon: int) -> dict[str, int]:
    h = max(int(horizon), 1)
    return {"1": 1, "3": 3, "7": 7, "14": 14, "h": h, "2h": 2 * h, "4h": 4 * h}


def build_features(prices: pd.DataFrame, horizon: int = 7, *, market: bool = False) -> pd.DataFrame:
    """Features for every observed card-day, using only prices up to that day.

    Input: long frame with ``card_id``, ``date`` and ``market_price`` (``category`` is
    carried through if present but is not a model feature). Output: the cleaned frame
    (see ``clean_prices``) plus ``FEATURE_COLUMNS`` (float32), ``MARKET_COLUMNS`` with
    ``market=True`` and ``BASELINE_COLUMNS`` (float64 prices), one row per observed
    card-day.
    """
    df = clean_prices(prices)
    w = _windows(horizon)
    columns = CARD_FEATURE_COLUMNS + (MARKET_COLUMNS if market else []) + BASELINE_COLUMNS
    if df.empty:
        for col in columns:
            df[col] = pd.Series(dtype=float)
        return df

    # Padding covers the longest look-back: the 4H windows and the 14-day fixed windows.
    g = _DailyGrid.build(df, pad=max(w["4h"], 14))
    feats: dict[str, np.ndarray] = {}
    lp = pd.Series(np.log(g.price_ff))
    for name in ("1", "3", "7", "14", "h", "2h", "4h"):
        feats[f"ret_{name}"] = g.at_obs(lp - lp.shift(w[name]))
    r1 = lp - lp.shift(1)
    for name in ("7", "h", "4h"):
        roll = r1.rolling(max(w[name], 2), min_periods=2)  # H=1: 2 days at least
        feats[f"vol_{name}"] = g.at_obs(roll.std(ddof=0))
    del r1

    # Level windows use the history available so far (min_periods=1 on the padded grid).
    ff = pd.Series(g.price_ff)
    for name in ("3", "7", "14", "h", "4h"):
        feats[f"dev_mean_{name}"] = g.at_obs(lp - np.log(ff.rolling(w[name], 1).mean()))
    for name in ("h", "4h"):
        feats[f"dev_med_{name}"] = g.at_obs(lp - np.log(ff.rolling(w[name], 1).median()))
    feats["dev_max_4h"] = g.at_obs(lp - np.log(ff.rolling(w["4h"], 1).max()))
    feats["dev_min_4h"] = g.at_obs(lp - np.log(ff.rolling(w["4h"], 1).min()))
    del lp

    observed = pd.Series(np.where(g.is_pad, np.nan, ~np.isnan(g.price)), dtype=float)
    for name in ("h", "4h"):
        feats[f"obs_frac_{name}"] = g.at_obs(observed.rolling(w[name], 1).mean())
    del observed
    gap = df["date"].diff().dt.days.to_numpy(dtype=np.float32)
    gap[_card_starts(df)] = np.nan
    feats["gap_prev"] = gap
    feats["history_days"] = np.minimum(g.at_obs(g.day_index), w["4h"])

    # Baseline price levels: calendar windows over the observed prices; the ewm runs over
    # the daily forward-filled series, so it is time-aware across gaps.
    price = pd.Series(g.price)
    feats["base_mean_3"] = g.at_obs(price.rolling(3, 1).mean(), np.float64)
    feats["base_median_7"] = g.at_obs(price.rolling(7, 1).median(), np.float64)
    del price
    del ff
    feats["base_ewm"] = g.ewm_at_obs(EWM_SPAN_DAYS)
    del g

    for col in CARD_FEATURE_COLUMNS + BASELINE_COLUMNS:
        df[col] = feats.pop(col)
    if market:
        add_market_features(df)
    return df


def add_market_features(frame: pd.DataFrame) -> None:
    """Add ``MARKET_COLUMNS`` in place: per day, the median over the cards observed that day.

    ``frame`` holds one row per observed card-day (a ``build_features`` frame), so every
    value is point in time. Computed for the whole frame at once: give it every card
    whose market the model should see, not a subset.
    """
    days = frame["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    codes, uniques = pd.factorize(days)
    for column, source in MARKET_SOURCES.items():
        values = pd.Series(frame[source].to_numpy(dtype=np.float64))
        medians = values.groupby(codes).median().reindex(range(len(uniques))).to_numpy()
        frame[column] = medians[codes].astype(np.float32)


def build_target(
    prices: pd.DataFrame, horizon: int = 7, *, as_of: date | pd.Timestamp | None = None
) -> pd.Series:
    """Median observed price over days t+1 .. t+H for every observed card-day.

    Aligned with ``build_features(prices, horizon)`` (same cleaned rows, same order).
    NaN when the window is not over yet, i.e. t + H is after ``as_of`` (the last day the
    prices could show: by default the newest day in ``prices``; a shard of cards passes
    the whole catalog's), or when fewer than ``ceil(H / 2)`` of the H days have a price.
    """
    df = clean_prices(prices)
    h = max(int(horizon), 1)
    if df.empty:
        return pd.Series(dtype=float, name=TARGET_COLUMN)
    g = _DailyGrid.build(df, pad=h)
    # Every card is followed by H days without a price (the next card's padding, and
    # this tail after the last card), so a window running past a card's last price is
    # judged the same wherever the card sits in the frame.
    price = np.concatenate([g.price, np.full(h, np.nan)])
    med = pd.Series(price).rolling(h, min_periods=math.ceil(h / 2)).median()
    # The window ending at t+H covers t+1..t+H.
    target = g.at_obs(med.shift(-h).to_numpy()[: len(g.price)], np.float64)
    # A window that is not over has no target yet. (Its median over the days it has so
    # far is not the H-day median; and whether a target exists must depend neither on a
    # later price nor on which card follows in the frame.)
    days = df["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    last = (
        days.max()
        if as_of is None
        else np.datetime64(pd.Timestamp(as_of).date(), "D").astype(np.int64)
    )
    target[days + h > last] = np.nan
    return pd.Series(target, index=df.index, name=TARGET_COLUMN)
