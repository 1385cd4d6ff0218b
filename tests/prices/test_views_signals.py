from __future__ import annotations

from django.test import Client

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
