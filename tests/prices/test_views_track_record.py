"""GET /api/v1/track-record/ and /api/v1/cards/{id}/track-record/ against hand computations."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from tests.support.api import World

MEW, PIKACHU, GENGAR = "sv2a-151-mew-ex-205", "sv2a-151-pikachu-173", "swsh-gengar-271"


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
