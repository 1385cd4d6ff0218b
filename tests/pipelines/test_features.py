"""Feature and target construction: point-in-time correctness, gaps, short histories."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from pipelines.features import (
    BASELINE_COLUMNS,
    CARD_FEATURE_COLUMNS,
    FEATURE_COLUMNS,
    MARKET_COLUMNS,
    build_features,
    build_target,
    clean_prices,
)

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2025-01-01")


def synthetic_prices(n_cards: int = 4, n_days: int = 120, seed: int = 0) -> pd.DataFrame:
    """Random-walk prices with missing days, a long gap and a card that starts late."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_cards):
        level = float(rng.uniform(5, 500))
        log_price = np.log(level) + rng.normal(0, 0.03, n_days).cumsum()
        keep = rng.random(n_days) > 0.15
        keep[0] = True
        if c == 1:
            keep[40:70] = False  # a month-long gap
        first = 60 if c == n_cards - 1 else 0  # a new card with a short history
        for d in range(first, n_days):
            if keep[d] or d == first:
                rows.append((f"card-{c}", START + d * DAY, float(np.exp(log_price[d]))))
    return pd.DataFrame(rows, columns=["card_id", "date", "market_price"])


def look_ahead_violations(
    feature_fn: Callable[[pd.DataFrame], pd.DataFrame],
    prices: pd.DataFrame,
    columns: list[str],
    cut_offsets: tuple[int, ...] = (0, 10, 45, 75, 100),
    seed: int = 1,
) -> list[str]:
    """Columns whose value on some day <= t changes when only prices after t change.

    For each t, prices after t are rescaled at random, a third of them deleted and a few
    new future days added; every row dated <= t must keep exactly the same features.
    """
    rng = np.random.default_rng(seed)
    base = feature_fn(prices).set_index(["card_id", "date"])
    bad: set[str] = set()
    for offset in cut_offsets:
        t = START + offset * DAY
        future = prices["date"] > t
        changed = prices.copy()
        changed.loc[future, "market_price"] *= np.exp(rng.normal(0, 0.3, int(future.sum())))
        changed = changed.drop(changed.index[future & (rng.random(len(changed)) < 0.33)])
        extra = changed.groupby("card_id").tail(1).assign(date=lambda f: f["date"] + 3 * DAY)
        changed = pd.concat([changed, extra[extra["date"] > t]], ignore_index=True)
        after = feature_fn(changed).set_index(["card_id", "date"])
        past = base.index[base.index.get_level_values("date") <= t]
        for col in columns:
            a = base.loc[past, col].to_numpy(dtype=float)
            b = after.loc[past, col].to_numpy(dtype=float)
            if not np.allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True):
                bad.add(col)
    return sorted(bad)


def peeking_features(prices: pd.DataFrame) -> pd.DataFrame:
    """A deliberately wrong feature: tomorrow's observed price relative to today's."""
    out = build_features(prices, 7)
    out["peek_next"] = np.log(
        out.groupby("card_id", observed=True)["market_price"].shift(-1) / out["market_price"]
    )
    return out


@pytest.mark.parametrize("column", FEATURE_COLUMNS + MARKET_COLUMNS + BASELINE_COLUMNS)
@pytest.mark.parametrize("horizon", [7, 30])
def test_feature_uses_no_prices_after_its_day(column: str, horizon: int) -> None:
    prices = synthetic_prices()
    build = lambda p: build_features(p, horizon, market=True)  # noqa: E731
    assert look_ahead_violations(build, prices, [column]) == []


@pytest.mark.parametrize(
    ("feature_fn", "column", "peeks"),
    [
        (lambda p: build_features(p, 7), "ret_1", False),
        (peeking_features, "ret_1", False),
        (peeking_features, "peek_next", True),
    ],
    ids=["real-feature", "real-feature-beside-bad", "peeking-feature"],
)
def test_look_ahead_check_flags_only_peeking_features(
    feature_fn: Callable[[pd.DataFrame], pd.DataFrame], column: str, peeks: bool
) -> None:
    violations = look_ahead_violations(feature_fn, synthetic_prices(), [column])
    assert violations == ([column] if peeks else [])


@pytest.mark.parametrize("horizon", [1, 7, 30])
def test_card_features_of_a_card_do_not_depend_on_other_cards(horizon: int) -> None:
    prices = synthetic_prices()
    alone = build_features(prices[prices["card_id"] == "card-2"], horizon)
    together = build_features(prices, horizon)
    together = together[together["card_id"] == "card-2"].reset_index(drop=True)
    cols = CARD_FEATURE_COLUMNS + BASELINE_COLUMNS
    np.testing.assert_allclose(alone[cols].to_numpy(float), together[cols].to_numpy(float))


def test_market_features_are_the_median_over_the_cards_observed_that_day() -> None:
    prices = synthetic_prices()
    out = build_features(prices, 7, market=True)
    assert not set(MARKET_COLUMNS) & set(build_features(prices, 7).columns)  # opt-in
    for column in MARKET_COLUMNS:
        source = column.removeprefix("mkt_")
        expected = out.groupby("date")[source].transform("median")
        np.testing.assert_allclose(out[column], expected, rtol=1e-6, equal_nan=True)
    # A day where only some cards have a price uses those cards only.
    day = out["date"].value_counts().idxmin()
    rows = out[out["date"] == day]
    assert len(rows) < prices["card_id"].nunique()
    assert rows["mkt_ret_3"].iloc[0] == pytest.approx(rows["ret_3"].median(), rel=1e-6)


@pytest.mark.parametrize("horizon", [7, 30])
def test_a_later_price_of_another_card_never_changes_todays_market_features(
    horizon: int,
) -> None:
    """Card-0 is observed on day t; card-1 pauses, then a *later* price of card-1 arrives,
    which stretches card-1's forward-filled calendar over day t. Nothing of day t moves."""
    prices = synthetic_prices()
    t = START + 100 * DAY
    paused = prices[~((prices["card_id"] == "card-1") & (prices["date"] > t - 5 * DAY))]
    later = pd.DataFrame({"card_id": ["card-1"], "date": [t + 9 * DAY], "market_price": [9.0]})
    before = build_features(paused, horizon, market=True)
    after = build_features(pd.concat([paused, later], ignore_index=True), horizon, market=True)
    past = before["date"] <= t
    key = ["card_id", "date"]
    columns = FEATURE_COLUMNS + MARKET_COLUMNS
    a = before[past].set_index(key)[columns]
    b = after[after["date"] <= t].set_index(key)[columns]
    pd.testing.assert_frame_equal(a, b.loc[a.index])


def test_build_features_returns_one_sorted_row_per_observed_card_day() -> None:
    prices = pd.DataFrame(
        {
            "card_id": ["b", "a", "a", "a", "b", "a"],
            "date": ["2025-01-02", "2025-01-03", "2025-01-01", "2025-01-03", "2025-01-01", "x"],
            "market_price": [2.0, 3.0, 1.0, 4.0, -5.0, 1.0],
        }
    )
    prices["date"] = pd.to_datetime(prices["date"], errors="coerce")
    out = build_features(prices, 7)
    assert list(out.columns[:3]) == ["card_id", "date", "market_price"]
    assert set(FEATURE_COLUMNS + BASELINE_COLUMNS) <= set(out.columns)
    assert out[["card_id", "date"]].astype(str).values.tolist() == [
        ["a", "2025-01-01"],
        ["a", "2025-01-03"],
        ["b", "2025-01-02"],
    ]
    assert out["market_price"].tolist() == [1.0, 4.0, 2.0]  # duplicate day: last row wins


def test_missing_days_are_forward_filled_and_flagged() -> None:
    dates = pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-05"])
    prices = pd.DataFrame({"card_id": "a", "date": dates, "market_price": [100.0, 110.0, 121.0]})
    out = build_features(prices, 7)
    assert out["gap_prev"].tolist()[1:] == [1.0, 3.0]
    assert np.isnan(out["gap_prev"].iloc[0])
    # 2025-01-04 is missing: the 1-day return is measured from the carried 110.
    assert out["ret_1"].iloc[2] == pytest.approx(np.log(121 / 110), rel=1e-6)
    assert out["ret_3"].iloc[2] == pytest.approx(np.log(121 / 110), rel=1e-6)
    # 3 of the 5 days so far are observed; the 7-day window only has those 5 days.
    assert out["obs_frac_h"].iloc[2] == pytest.approx(3 / 5)
    # Baseline mean of the last 3 calendar days only sees the observed price.
    assert out["base_mean_3"].iloc[2] == pytest.approx(121.0)


def test_short_history_gets_nan_returns_and_a_capped_history_length() -> None:
    prices = pd.DataFrame(
        {
            "card_id": "new",
            "date": START + pd.to_timedelta(np.arange(40), unit="D"),
            "market_price": np.linspace(10, 20, 40),
        }
    )
    out = build_features(prices, 7)
    assert out["history_days"].tolist() == [min(d, 28) for d in range(40)]
    assert out["ret_h"].isna().tolist() == [d < 7 for d in range(40)]
    assert out["ret_4h"].isna().tolist() == [d < 28 for d in range(40)]
    # Level windows use the history available so far: defined from day one.
    assert out["dev_mean_4h"].notna().all()
    assert out["dev_mean_4h"].iloc[0] == 0.0


def test_features_are_scale_free() -> None:
    prices = synthetic_prices()
    scaled = prices.assign(market_price=prices["market_price"] * 37.0)
    a = build_features(prices, 7)[FEATURE_COLUMNS].to_numpy(float)
    b = build_features(scaled, 7)[FEATURE_COLUMNS].to_numpy(float)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_window_lengths_follow_the_horizon() -> None:
    prices = pd.DataFrame(
        {
            "card_id": "a",
            "date": START + pd.to_timedelta(np.arange(30), unit="D"),
            "market_price": np.exp(np.arange(30) * 0.01),
        }
    )
    for horizon in (3, 7):
        out = build_features(prices, horizon)
        assert out["ret_h"].iloc[-1] == pytest.approx(0.01 * horizon, rel=1e-4)


def test_ewm_baseline_matches_pandas_on_the_daily_calendar() -> None:
    prices = synthetic_prices()
    out = build_features(prices, 7)
    for card, grp in clean_prices(prices).groupby("card_id", observed=True):
        daily = grp.set_index("date")["market_price"].asfreq("D").ffill()
        expected = daily.ewm(span=7, adjust=True).mean().loc[grp["date"]].to_numpy()
        got = out.loc[out["card_id"] == card, "base_ewm"].to_numpy()
        np.testing.assert_allclose(got, expected)


def test_target_is_the_median_of_the_next_h_days() -> None:
    prices = pd.DataFrame(
        {
            "card_id": "a",
            "date": START + pd.to_timedelta(np.arange(7), unit="D"),
            "market_price": [10.0, 30.0, 20.0, 50.0, 40.0, 60.0, 70.0],
        }
    )
    target = build_target(prices, 3)
    # t=0 -> median(30, 20, 50); the last 3 days have no complete future window.
    assert target.tolist()[:4] == [30.0, 40.0, 50.0, 60.0]
    assert target.iloc[4:].isna().all()


def test_target_needs_half_the_window_observed() -> None:
    days = [0, 1, 2, 4, 7, 8, 9, 10]
    prices = pd.DataFrame(
        {
            "card_id": "a",
            "date": START + pd.to_timedelta(days, unit="D"),
            "market_price": [1.0, 2.0, 3.0, 5.0, 8.0, 9.0, 10.0, 11.0],
        }
    )
    target = build_target(prices, 4).tolist()
    # day 0: days 1..4 has 3 observations (2, 3, 5) -> median 3
    assert target[0] == 3.0
    # day 2: days 3..6 has one observation (5) < ceil(4/2): too gappy
    assert np.isnan(target[2])
    # day 4: days 5..8 has 8, 9 -> 8.5
    assert target[3] == 8.5
    # day 7: days 8..11 ends after the last observation (day 10): not observable yet
    assert np.isnan(target[4])


def test_target_is_aligned_with_features() -> None:
    prices = synthetic_prices().sample(frac=1.0, random_state=3)  # shuffled input
    feats = build_features(prices, 7)
    target = build_target(prices, 7)
    assert len(target) == len(feats)
    assert target.index.equals(feats.index)
    row = feats.iloc[10]
    same_card = prices[(prices["card_id"] == row["card_id"])]
    window = same_card[
        (same_card["date"] > row["date"]) & (same_card["date"] <= row["date"] + 7 * DAY)
    ]
    assert target.iloc[10] == pytest.approx(window["market_price"].median())


def test_empty_input_gives_empty_outputs() -> None:
    empty = pd.DataFrame({"card_id": [], "date": pd.to_datetime([]), "market_price": []})
    assert build_features(empty, 7).empty
    assert build_target(empty, 7).empty


def test_a_target_needs_the_whole_window_whichever_card_comes_next() -> None:
    """The last days of a card have no target, even when another card follows it in the
    frame (whose padding must not count as "the window goes on")."""
    days = START + pd.to_timedelta(np.arange(10), unit="D")
    one = pd.DataFrame({"card_id": "a", "date": days, "market_price": np.arange(1.0, 11.0)})
    two = pd.concat([one, one.assign(card_id="b")], ignore_index=True)
    alone = build_target(one, 4)
    first_of_two = build_target(two, 4).iloc[:10]
    np.testing.assert_array_equal(alone.to_numpy(), first_of_two.to_numpy())
    assert alone.isna().tolist() == [False] * 6 + [True] * 4  # days 6..9 lack day t+4


def test_a_window_past_a_cards_last_price_is_judged_the_same_wherever_the_card_sits() -> None:
    """Card a stops three days before the data ends; its last windows have the prices
    they have, alone or followed by another card."""
    days = START + pd.to_timedelta(np.arange(10), unit="D")
    a = pd.DataFrame({"card_id": "a", "date": days[:7], "market_price": np.arange(1.0, 8.0)})
    b = pd.DataFrame({"card_id": "b", "date": days, "market_price": np.arange(1.0, 11.0)})
    as_of = days[-1]
    alone = build_target(a, 4, as_of=as_of)
    before_b = build_target(pd.concat([a, b], ignore_index=True), 4, as_of=as_of).iloc[:7]
    np.testing.assert_array_equal(alone.to_numpy(), before_b.to_numpy())
    # day 4: window days 5..8 has prices on 5 and 6 only: enough (2 of 4), median 6.5
    assert alone.iloc[4] == 6.5
    assert np.isnan(alone.iloc[6])  # days 7..10: day 10 is after as_of
