from __future__ import annotations

import pytest
from django.test import Client

from tests.support.api import LAST


def test_cards_list_carries_latest_price_and_prediction(api: Client, world) -> None:
    response = api.get("/api/v1/cards/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    mew = next(c for c in body["results"] if c["card_id"] == "sv2a-151-mew-ex-205")
    assert mew["latest_market_price"] == "109.00"
    assert mew["latest_price_date"] == LAST.isoformat()
    assert mew["fair_price"] == "136.25"
    assert (mew["deviation_pct"], mew["signal"]) == (-20.0, "BUY")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("set=SV2A", {"sv2a-151-mew-ex-205", "sv2a-151-pikachu-173"}),
        ("category=grail", {"sv2a-151-mew-ex-205"}),
        ("signal=SELL", {"sv2a-151-pikachu-173"}),
        ("search=gengar", {"swsh-gengar-271"}),
        ("search=173", {"sv2a-151-pikachu-173"}),
    ],
)
def test_cards_list_filters(api: Client, world, query: str, expected: set[str]) -> None:
    body = api.get(f"/api/v1/cards/?{query}").json()
    assert {c["card_id"] for c in body["results"]} == expected


def test_cards_list_is_paginated(api: Client, world) -> None:
    body = api.get("/api/v1/cards/?page_size=2").json()
    assert (body["count"], len(body["results"])) == (3, 2)
    assert "page=2" in body["next"]
    assert api.get("/api/v1/cards/?page=9").status_code == 404


@pytest.mark.parametrize("query", ["signal=MAYBE", "category=shiny"])
def test_if_a_filter_value_is_invalid_then_400_names_it(api: Client, world, query: str) -> None:
    response = api.get(f"/api/v1/cards/?{query}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(query.split("=")[0])


def test_card_detail_and_unknown_card(api: Client, world) -> None:
    detail = api.get("/api/v1/cards/sv2a-151-pikachu-173/")
    assert detail.status_code == 200
    assert detail.json()["signal"] == "SELL"
    missing = api.get("/api/v1/cards/no-such-card/")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Unknown card 'no-such-card'."}


def test_price_history_with_a_range(api: Client, world) -> None:
    body = api.get("/api/v1/cards/swsh-gengar-271/prices/?start=2026-05-03&end=2026-05-05").json()
    assert [p["date"] for p in body["results"]] == ["2026-05-03", "2026-05-04", "2026-05-05"]
    assert body["results"][0] == {
        "date": "2026-05-03",
        "market_price": "102.00",
        "currency": "USD",
        "source": "test",
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("start=yesterday", "start"),
        ("end=2026-13-01", "end"),
        ("start=2026-05-05&end=2026-05-01", "start"),
    ],
)
def test_if_price_range_is_bad_then_400_names_the_field(
    api: Client, world, query: str, field: str
) -> None:
    response = api.get(f"/api/v1/cards/swsh-gengar-271/prices/?{query}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")


def test_price_history_of_unknown_card_is_404(api: Client, world) -> None:
    assert api.get("/api/v1/cards/nope/prices/").status_code == 404
