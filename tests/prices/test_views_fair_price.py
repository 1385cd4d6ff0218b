from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.support.api import LAST

MEW = "sv2a-151-mew-ex-205"


def post(client: Client, path: str, body: object) -> object:
    return client.post(path, json.dumps(body), content_type="application/json")


def test_fair_price_get_latest_and_by_date(api: Client, world) -> None:
    latest = api.get(f"/api/v1/cards/{MEW}/fair-price/")
    assert latest.status_code == 200
    assert latest.json() == {
        "card_id": MEW,
        "date": LAST.isoformat(),
        "market_price": "109.00",
        "fair_price": "136.25",
        "fair_low": "122.62",
        "fair_high": "149.88",
        "deviation_pct": -20.0,
        "signal": "BUY",
        "signal_rule": "band",
        "horizon_days": 30,
        "model_version": "pokewatch-fair-value/3",
    }
    earlier = api.get(f"/api/v1/cards/{MEW}/fair-price/?date=2026-05-02").json()
    assert (earlier["date"], earlier["signal"], earlier["market_price"]) == (
        "2026-05-02",
        "HOLD",
        "101.00",
    )


def test_fair_price_errors(api: Client, world) -> None:
    no_day = api.get(f"/api/v1/cards/{MEW}/fair-price/?date=2020-01-01")
    bad_day = api.get(f"/api/v1/cards/{MEW}/fair-price/?date=01/05/2026")
    no_card = api.get("/api/v1/cards/ghost/fair-price/")
    assert (no_day.status_code, bad_day.status_code, no_card.status_code) == (404, 400, 404)
    assert no_day.json() == {"detail": f"No fair price for '{MEW}' on 2020-01-01."}
    assert bad_day.json()["detail"].startswith("date:")


def test_fair_price_post(api: Client, world) -> None:
    response = post(api, "/api/v1/fair-price/", {"card_id": MEW, "date": "2026-05-03"})
    assert response.status_code == 200
    assert response.json()["market_price"] == "102.00"
    latest = post(api, "/api/v1/fair-price/", {"card_id": MEW})
    assert latest.json()["date"] == LAST.isoformat()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "card_id"),
        ({"card_id": "../../etc/passwd"}, "card_id"),
        ({"card_id": "x' OR 1=1 --"}, "card_id"),
        ({"card_id": MEW, "date": "tomorrow"}, "date"),
        ({"card_id": MEW, "date": 20260501}, "date"),
        ({"card_id": ["a"]}, "card_id"),
    ],
)
def test_if_post_body_is_malformed_then_400_names_the_field(
    api: Client, world, body: dict, field: str
) -> None:
    response = post(api, "/api/v1/fair-price/", body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:")


@pytest.mark.parametrize("card_id", [42, 4.2, True, "A" * 101, "ünïcode", "", " "])
def test_odd_card_ids_never_crash(api: Client, world, card_id: object) -> None:
    response = post(api, "/api/v1/fair-price/", {"card_id": card_id})
    assert response.status_code in (400, 404)
    assert "detail" in response.json()


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"string"', "null", "{"])
def test_if_body_is_not_an_object_then_400(api: Client, world, raw: str) -> None:
    response = api.post("/api/v1/fair-price/", raw, content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_batch_preserves_order_and_reports_unknown_ids(api: Client, world) -> None:
    ids = ["swsh-gengar-271", "ghost", MEW]
    response = post(api, "/api/v1/fair-price/batch/", {"card_ids": ids})
    assert response.status_code == 200
    items = response.json()
    assert [i["card_id"] for i in items] == ids
    assert [i["found"] for i in items] == [True, False, True]
    assert items[1]["detail"] == "Unknown card 'ghost'."
    assert items[2]["result"]["signal"] == "BUY"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"card_ids": []}, "card_ids:"),
        ({"card_ids": [f"c{i}" for i in range(101)]}, "card_ids:"),
        ({"card_ids": "sv2a"}, "card_ids:"),
        ({"card_ids": [MEW], "date": "nope"}, "date:"),
    ],
)
def test_if_batch_is_malformed_then_400(api: Client, world, body: dict, message: str) -> None:
    response = post(api, "/api/v1/fair-price/batch/", body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(message)


def test_the_batch_limit_itself_is_accepted(api: Client, world) -> None:
    response = post(api, "/api/v1/fair-price/batch/", {"card_ids": [MEW] * 100})
    assert response.status_code == 200
    assert len(response.json()) == 100
