from __future__ import annotations

from datetime import date, timedelta

from django.test import Client

from prices import caching
from prices.models import Prediction, PricePoint
from tests.support.api import LAST


def test_signals_default_to_the_latest_day_largest_deviation_first(api: Client, world) -> None:
    body = api.get("/api/v1/signals/").json()
    assert body["date"] == LAST.isoformat()
    assert [(r["card_id"], r["signal"]) for r in body["results"]] == [
        ("sv2a-151-pikachu-173", "SELL"),
        ("sv2a-151-mew-ex-205", "BUY"),
        ("swsh-gengar-271", "HOLD"),
    ]
    assert body["count"] == 3


def test_signals_filter_and_date(api: Client, world) -> None:
    buys = api.get("/api/v1/signals/?signal=BUY").json()
    assert [r["card_id"] for r in buys["results"]] == ["sv2a-151-mew-ex-205"]
    earlier = api.get("/api/v1/signals/?date=2026-05-02&signal=HOLD").json()
    assert (earlier["date"], earlier["count"]) == ("2026-05-02", 3)
    none = api.get("/api/v1/signals/?date=2026-05-02&signal=SELL").json()
    assert none["count"] == 0


def test_signals_errors(api: Client, world) -> None:
    bad_signal = api.get("/api/v1/signals/?signal=buy!")
    bad_date = api.get("/api/v1/signals/?date=2026-02-30")
    no_day = api.get("/api/v1/signals/?date=2019-01-01")
    assert (bad_signal.status_code, bad_date.status_code, no_day.status_code) == (400, 400, 404)
    assert bad_signal.json()["detail"].startswith("signal:")
    assert no_day.json() == {"detail": "No predictions on 2019-01-01."}


def test_signals_without_any_champion_are_empty(api: Client, db) -> None:
    assert api.get("/api/v1/signals/").json() == {"date": None, "count": 0, "results": []}


def test_the_browsable_signals_page_renders_for_staff(admin_client: Client, world) -> None:
    page = admin_client.get("/api/v1/signals/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert "sv2a-151-pikachu-173" in page.text


def add_predictions(world, day: date, cards: int) -> None:
    """The champion's predictions of the first ``cards`` cards on ``day`` (one price each)."""
    for card in world.cards[:cards]:
        PricePoint.objects.create(card=card, date=day, market_price=120, source="test")
        Prediction.objects.create(
            model_version=world.champion,
            card=card,
            date=day,
            market_price=120,
            fair_price=118,
            deviation=0.017,
            signal="HOLD",
        )


def test_a_day_with_only_a_few_cards_scored_is_not_the_default_day(api: Client, world) -> None:
    add_predictions(world, LAST + timedelta(days=1), cards=1)  # one row imported early
    early = api.get("/api/v1/signals/").json()
    asked = api.get(f"/api/v1/signals/?date={LAST + timedelta(days=1)}").json()
    assert (early["date"], early["count"]) == (LAST.isoformat(), 3)
    assert asked["count"] == 1  # still there when asked for


def test_the_default_day_moves_once_most_cards_are_scored(api: Client, world) -> None:
    add_predictions(world, LAST + timedelta(days=1), cards=2)  # 2 of 3: at least half
    bumped = caching.bump_generation()  # as the scorer does
    body = api.get("/api/v1/signals/").json()
    assert bumped and (body["date"], body["count"]) == ((LAST + timedelta(days=1)).isoformat(), 2)
