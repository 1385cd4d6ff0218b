"""GET /api/v1/track-record/ and /api/v1/cards/{id}/track-record/ against hand computations."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from prices.models import SignalRecord
from tests.api_fixtures import World

MEW, PIKACHU, GENGAR = "sv2a-151-mew-ex-205", "sv2a-151-pikachu-173", "swsh-gengar-271"
DAY = date(2026, 3, 1)


def record(card, day: int, signal: str, realised: float | None, graded: bool = True) -> None:
    market = 100.0
    SignalRecord.objects.create(
        card=card,
        date=DAY + timedelta(days=day),
        horizon=30,
        signal_rule="band",
        signal=signal,
        market_price=Decimal("100.00"),
        fair_price=Decimal("105.00"),
        fair_low=Decimal("101.00"),
        fair_high=Decimal("110.00"),
        buy_threshold=0.10,
        sell_threshold=0.15,
        published_at=timezone.now(),
        graded_at=timezone.now() if graded else None,
        realised_median=None if realised is None else Decimal(f"{realised:.2f}"),
        realised_return=None if realised is None else realised / market - 1,
        rose=None if realised is None else realised >= market / 0.9,
        fell=None if realised is None else realised <= market / 1.15,
    )


@pytest.fixture
def graded(world: World) -> World:
    mew, pikachu, gengar = world.cards
    # BUY: +20 % (right), +5 % (hit only), -10 % (wrong)
    record(mew, 0, "BUY", 120.0)
    record(mew, 1, "BUY", 105.0)
    record(pikachu, 0, "BUY", 90.0)
    # SELL: -20 % (right), +2 % (wrong)
    record(pikachu, 1, "SELL", 80.0)
    record(gengar, 0, "SELL", 102.0)
    # HOLD days count in the base rates only
    record(gengar, 1, "HOLD", 100.0)
    record(gengar, 2, "HOLD", 150.0)
    # not graded yet, or ungradable: never counted
    record(mew, 2, "BUY", None, graded=False)
    record(gengar, 3, "SELL", None)
    return world


def test_track_record_numbers_equal_a_hand_computation(api: Client, graded: World) -> None:
    body = api.get("/api/v1/track-record/?start=2026-03-01&end=2026-03-31").json()
    assert body == {
        "horizon_days": 30,
        "start": "2026-03-01",
        "end": "2026-03-31",
        "buy": {
            "n": 3,
            "right": 1,
            "precision": round(1 / 3, 4),
            "hit_rate": round(2 / 3, 4),
            "mean_return": round((0.20 + 0.05 - 0.10) / 3, 4),
        },
        "sell": {
            "n": 2,
            "right": 1,
            "precision": 0.5,
            "hit_rate": 0.5,
            "mean_return": round((-0.20 + 0.02) / 2, 4),
        },
        # 7 graded days, returns +.20 +.05 -.10 -.20 +.02 0 +.50
        "base": {
            "n": 7,
            "buy_rate": round(2 / 7, 4),  # +20 %, +50 % rose by >= 11.1 %
            "sell_rate": round(1 / 7, 4),  # -20 % fell by >= 13 %
            "up_rate": round(4 / 7, 4),
            "mean_return": round((0.20 + 0.05 - 0.10 - 0.20 + 0.02 + 0.0 + 0.50) / 7, 4),
        },
        "pending": 1,
    }


def test_track_record_period_filters_and_defaults(api: Client, graded: World, settings) -> None:
    one_day = api.get("/api/v1/track-record/?start=2026-03-02&end=2026-03-02").json()
    assert (one_day["buy"]["n"], one_day["sell"]["n"], one_day["base"]["n"]) == (1, 1, 3)
    settings.POKEWATCH_TRACK_RECORD_DAYS = 10_000
    default = api.get("/api/v1/track-record/").json()
    assert default["end"] == timezone.localdate().isoformat()
    assert default["buy"]["n"] == 3


def test_card_track_record_lists_its_graded_signals(api: Client, graded: World) -> None:
    body = api.get(f"/api/v1/cards/{MEW}/track-record/?start=2026-03-01&end=2026-03-31").json()
    assert body["card_id"] == MEW
    assert (body["buy"]["n"], body["buy"]["right"], body["sell"]["n"]) == (2, 1, 0)
    assert body["buy"]["mean_return"] == pytest.approx(0.125)
    assert [
        (s["date"], s["signal"], s["graded"], s["right"], s["hit"]) for s in body["signals"]
    ] == [
        ("2026-03-01", "BUY", True, True, True),
        ("2026-03-02", "BUY", True, False, True),
        ("2026-03-03", "BUY", False, None, None),
    ]
    first = body["signals"][0]
    assert (first["market_price"], first["fair_low"], first["realised_median"]) == (
        "100.00",
        "101.00",
        "120.00",
    )
    assert first["realised_return"] == pytest.approx(0.2)


def test_track_record_errors_are_json(api: Client, graded: World) -> None:
    backwards = api.get("/api/v1/track-record/?start=2026-03-05&end=2026-03-01")
    assert backwards.status_code == 400 and "start" in backwards.json()["detail"]
    assert api.get("/api/v1/track-record/?start=March").status_code == 400
    assert api.get("/api/v1/cards/ghost/track-record/").status_code == 404
    assert Client().get("/api/v1/track-record/").status_code == 401
