"""The deterministic market simulator (no database)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from pokewatch_site.errors import InvalidInput
from prices.sources.base import PriceRow, SourceCard
from prices.sources.simulated import CATEGORIES, EPOCH, SimulatedSource

END = date(2025, 6, 30)
CARDS = [
    SourceCard("sim-charizard-ex-201", category="grail"),
    SourceCard("sim-base1-4-charizard", category="chase"),
    SourceCard("sim-booster-box", category="sealed"),
    SourceCard("sim-plain-card"),
]


def by_card(rows: list[PriceRow]) -> dict[str, list[PriceRow]]:
    grouped: dict[str, list[PriceRow]] = {}
    for row in rows:
        grouped.setdefault(row.card_id, []).append(row)
    return grouped


def test_same_seed_gives_identical_rows() -> None:
    first = SimulatedSource(seed=7, extra_cards=3).fetch(CARDS, end=END, days=90)
    second = SimulatedSource(seed=7, extra_cards=3).fetch(CARDS, end=END, days=90)

    assert first.rows == second.rows
    assert first.new_cards == second.new_cards


def test_different_seed_gives_different_prices() -> None:
    first = SimulatedSource(seed=1).fetch(CARDS, end=END, days=30).rows
    second = SimulatedSource(seed=2).fetch(CARDS, end=END, days=30).rows

    assert {(r.card_id, r.date): r.market_price for r in first} != {
        (r.card_id, r.date): r.market_price for r in second
    }


def test_a_card_series_does_not_depend_on_the_other_cards_or_the_chunking() -> None:
    alone = SimulatedSource(seed=3).fetch(CARDS[:1], end=END, days=60).rows
    together = SimulatedSource(seed=3, extra_cards=5, chunk_size=2).fetch(CARDS, end=END, days=60)

    assert by_card(together.rows)[CARDS[0].card_id] == alone


def test_one_day_window_equals_the_last_day_of_a_year_window() -> None:
    source = SimulatedSource(seed=11, extra_cards=20)
    year = source.fetch(CARDS, end=END, days=365).rows
    one_day = source.fetch(CARDS, end=END, days=1).rows

    assert one_day == [row for row in year if row.date == END]
    assert one_day  # with 24 cards and ~5% missing days, some card has a price on END


def test_overlapping_windows_agree_on_every_shared_day() -> None:
    source = SimulatedSource(seed=5, extra_cards=10)
    early = source.fetch(CARDS, end=END - timedelta(days=100), days=200).rows
    late = source.fetch(CARDS, end=END, days=200).rows
    shared = {r for r in early if r.date > END - timedelta(days=200)}

    assert shared
    assert shared == {r for r in late if r.date <= END - timedelta(days=100)}


def test_prices_are_positive_decimals_in_cents_grouped_by_card_in_date_order() -> None:
    rows = SimulatedSource(seed=42, extra_cards=60).fetch(CARDS, end=END, days=365).rows

    assert all(r.market_price >= Decimal("0.01") for r in rows)
    assert all(r.market_price.as_tuple().exponent == -2 for r in rows)
    assert all(r.currency == "USD" for r in rows)
    order = {card_id: n for n, card_id in enumerate(dict.fromkeys(r.card_id for r in rows))}
    assert list(order)[: len(CARDS)] == [c.card_id for c in CARDS]
    assert rows == sorted(rows, key=lambda r: (order[r.card_id], r.date))
    start = END - timedelta(days=364)
    assert all(start <= r.date <= END for r in rows)


def test_some_days_are_missing_but_most_are_present() -> None:
    n_cards, days = 50, 365
    source = SimulatedSource(seed=42, extra_cards=n_cards)
    rows = source.fetch([], end=END, days=days).rows
    share = len(rows) / (n_cards * days)

    assert 0.92 < share < 0.98


def test_price_levels_span_cheap_cards_to_grails() -> None:
    source = SimulatedSource(seed=42, extra_cards=600)
    frame = source.fetch_frame([], end=END, days=1)
    categories = {info.card_id: info.category for info in source.extra_card_infos()}
    medians = frame.groupby(frame.card_id.map(categories)).market_price.median()

    assert frame.market_price.min() < 5
    assert frame.market_price.max() > 500
    assert medians["grail"] > medians["chase"] > medians["other"]
    assert medians["sealed"] > medians["meta"]


def test_extra_cards_come_with_card_info_and_rows() -> None:
    batch = SimulatedSource(seed=42, extra_cards=8).fetch([], end=END, days=30)

    ids = [info.card_id for info in batch.new_cards]
    assert ids == [f"sim-{n:06d}" for n in range(1, 9)]
    first = batch.new_cards[0]
    assert (first.name, first.set_code, first.set_name) == ("Simulated card 1", "sim", "Simulated")
    assert [info.category for info in batch.new_cards[:6]] == list(CATEGORIES)
    assert set(by_card(batch.rows)) == set(ids)
    assert batch.skipped == []


def test_real_cards_get_no_simulated_prices() -> None:
    real = [SourceCard("tcgplayer-517045-holofoil", category="grail"), SourceCard("mew")]
    batch = SimulatedSource(seed=42, extra_cards=1).fetch([*real, CARDS[0]], end=END, days=5)

    assert set(by_card(batch.rows)) == {"sim-000001", CARDS[0].card_id}


def test_tracked_cards_are_not_reported_as_new_cards() -> None:
    batch = SimulatedSource(seed=42).fetch(CARDS, end=END, days=10)

    assert batch.new_cards == []
    assert set(by_card(batch.rows)) == {c.card_id for c in CARDS}


@pytest.mark.parametrize(
    ("end", "days"), [(EPOCH - timedelta(days=1), 1), (EPOCH + timedelta(days=5), 7)]
)
def test_a_window_before_the_epoch_raises_invalid_input(end: date, days: int) -> None:
    with pytest.raises(InvalidInput, match="2023-01-01"):
        SimulatedSource().fetch(CARDS, end=end, days=days)


def test_a_window_starting_on_the_epoch_is_accepted() -> None:
    rows = SimulatedSource().fetch(CARDS, end=EPOCH + timedelta(days=6), days=7).rows

    assert min(r.date for r in rows) >= EPOCH


@pytest.mark.parametrize("bad", [0, -3])
def test_non_positive_days_raise_invalid_input(bad: int) -> None:
    with pytest.raises(InvalidInput):
        SimulatedSource().fetch(CARDS, end=END, days=bad)


def test_negative_extra_cards_raise_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        SimulatedSource(extra_cards=-1)


def test_fetch_frame_matches_fetch() -> None:
    source = SimulatedSource(seed=9, extra_cards=4)
    rows = source.fetch(CARDS, end=END, days=20).rows
    frame = source.fetch_frame(CARDS, end=END, days=20)

    assert list(frame.columns) == ["card_id", "date", "market_price", "currency"]
    assert len(frame) == len(rows)
    assert frame.card_id.tolist() == [r.card_id for r in rows]
    assert [d.date() for d in frame.date] == [r.date for r in rows]
    assert frame.market_price.tolist() == [float(r.market_price) for r in rows]


def test_fetch_frame_of_nothing_is_an_empty_frame_with_the_columns() -> None:
    frame = SimulatedSource().fetch_frame([], end=END, days=5)

    assert frame.empty
    assert list(frame.columns) == ["card_id", "date", "market_price", "currency"]
    assert pd.api.types.is_datetime64_any_dtype(frame.date)


def test_long_windows_show_hype_spikes_and_reprint_drops() -> None:
    frame = SimulatedSource(seed=42, extra_cards=100).fetch_frame([], end=END, days=900)
    spikes = drops = 0
    for _, group in frame.groupby("card_id"):
        log_price = np.log(group.market_price.to_numpy())
        jumps = np.diff(log_price)
        # A spike: a one-day jump far above the daily noise, mostly gone a month later.
        for k in np.flatnonzero(jumps > 0.3):
            if k + 30 < len(log_price) and log_price[k + 30] < log_price[k + 1] - 0.2:
                spikes += 1
                break
        # A reprint: a one-day fall that is still there a month later.
        for k in np.flatnonzero(jumps < -0.25):
            before = np.median(log_price[max(0, k - 30) : k + 1])
            after = np.median(log_price[k + 1 : k + 31])
            if k + 31 <= len(log_price) and after < before - 0.2:
                drops += 1
                break

    assert spikes >= 50  # of 100 cards (98 with seed 42)
    assert drops >= 30  # (69 with seed 42)
    assert math.isfinite(frame.market_price.sum())
