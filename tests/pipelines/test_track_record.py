"""The track record service: what gets recorded as served, and grading on known outcomes."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from pipelines import track_record
from pipelines.publishing import publish
from pipelines.scoring import score
from prices.models import SignalRecord

START = date(2026, 1, 1)
H = 4


def served(card_id: str, days: list[int], signal: str = "BUY") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "card_id": card_id,
            "date": [pd.Timestamp(START + timedelta(days=d)) for d in days],
            "market_price": 100.0,
            "fair_price": 120.0,
            "fair_low": 110.0,
            "fair_high": 130.0,
            "deviation": -1 / 6,
            "signal": signal,
        }
    )


@pytest.fixture
def card(make_card, make_prices):
    card = make_card(card_id="known")
    # day 0..11; the median of days 1..4 after day 0 is median(90, 130, 120, 125) = 122.5
    make_prices(card, [100, 90, 130, 120, 125, 80, 70, 60, 50, 200, 210, 220], start=START)
    return card


def test_only_out_of_sample_days_are_recorded(card, make_version) -> None:
    # Trained on data up to day 9 at H = 4: targets of days <= 5 were in training.
    champion = make_version("model", horizon=H, data_end=START + timedelta(days=9))
    publish(champion, served("known", list(range(10))))
    recorded = sorted(SignalRecord.objects.values_list("date", flat=True))
    assert recorded == [START + timedelta(days=d) for d in (6, 7, 8, 9)]
    record = SignalRecord.objects.get(date=START + timedelta(days=6))
    assert (record.horizon, record.signal_rule, record.signal) == (H, "band", "BUY")
    assert (record.fair_low, record.fair_high) == (Decimal("110.00"), Decimal("130.00"))
    assert record.model_version == champion and record.graded_at is None


def test_a_later_champion_never_replaces_what_was_served(card, make_version) -> None:
    first = make_version("model", horizon=H, data_end=START + timedelta(days=9))
    publish(first, served("known", list(range(10)), signal="BUY"))
    second = make_version("model", horizon=H, data_end=START + timedelta(days=11))
    publish(second, served("known", list(range(12)), signal="SELL"))
    by_day = dict(SignalRecord.objects.values_list("date", "signal"))
    assert [by_day[START + timedelta(days=d)] for d in range(6, 12)] == [
        "BUY",
        "BUY",
        "BUY",
        "BUY",
        "SELL",  # days 10 and 11 were first served by the second champion
        "SELL",
    ]


def test_scoring_records_the_new_days_it_scores(card, settings, make_version) -> None:
    settings.POKEWATCH_SERVING_WINDOW_DAYS = 5
    champion = make_version("last_price", horizon=H, data_end=START + timedelta(days=8))
    publish(champion, pd.DataFrame(columns=["card_id", "date", "fair_price"]))
    score()
    assert SignalRecord.objects.filter(model_version=champion).count() == 5
    assert set(SignalRecord.objects.values_list("signal", flat=True)) == {"HOLD"}


def test_grading_fills_the_realised_median_once_the_horizon_has_passed(card, make_version) -> None:
    champion = make_version("model", horizon=H, data_end=START + timedelta(days=3))
    publish(champion, served("known", [0, 5, 8, 11]))
    result = track_record.grade(today=START + timedelta(days=20))
    # day 0: window days 1..4 -> median(90, 130, 120, 125) = 122.5 (+22.5 %)
    # day 5: window 6..9 -> median(70, 60, 50, 200) = 65 (-35 %)
    # day 8 needs day 12: not yet; day 11: not yet
    assert (result.graded, result.pending) == (2, 2)
    day0 = SignalRecord.objects.get(date=START)
    assert day0.realised_median == Decimal("122.50")
    assert day0.realised_return == pytest.approx(0.225)
    assert (day0.rose, day0.fell, day0.right, day0.hit) == (True, False, True, True)
    day5 = SignalRecord.objects.get(date=START + timedelta(days=5))
    assert day5.realised_median == Decimal("65.00") and day5.realised_return == pytest.approx(-0.35)
    assert (day5.rose, day5.fell, day5.right, day5.hit) == (False, True, False, False)
    assert SignalRecord.objects.get(date=START + timedelta(days=8)).graded_at is None


def test_a_window_with_too_few_prices_is_graded_without_an_outcome(
    make_card, make_prices, make_version
) -> None:
    gappy = make_card(card_id="gappy")
    make_prices(gappy, [100.0], start=START)
    make_prices(gappy, [50.0], start=START + timedelta(days=4))  # 1 price in days 1..4
    champion = make_version("model", horizon=H, data_end=START)
    publish(champion, served("gappy", [0]))
    assert track_record.grade(today=START + timedelta(days=10)).graded == 1
    record = SignalRecord.objects.get()
    assert record.graded_at is not None
    assert record.realised_median is None and record.right is None


def test_records_older_than_the_window_are_dropped(card, settings, make_version) -> None:
    settings.POKEWATCH_TRACK_RECORD_DAYS = 30
    champion = make_version("model", horizon=H, data_end=START + timedelta(days=3))
    publish(champion, served("known", [0, 5]))
    result = track_record.grade(today=START + timedelta(days=33))
    assert result.pruned == 1
    assert list(SignalRecord.objects.values_list("date", flat=True)) == [START + timedelta(5)]


def test_grading_takes_a_few_queries_whatever_the_number_of_records(
    card, django_assert_max_num_queries, make_version
) -> None:
    champion = make_version("model", horizon=H, data_end=START)
    publish(champion, served("known", list(range(12))))
    with django_assert_max_num_queries(20):
        result = track_record.grade(today=START + timedelta(days=20))
    assert (result.graded, result.pending) == (8, 4)  # days 0..7 are due (day 11 - H)
