"""Every endpoint that returns a prediction carries its band, signal rule and horizon."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tests.support.api import LAST

MEW = "sv2a-151-mew-ex-205"
EXPECTED = {
    "fair_price": "136.25",
    "fair_low": "122.62",
    "fair_high": "149.88",
    "signal": "BUY",
    "signal_rule": "band",
    "horizon_days": 30,
}


def post(client: Client, path: str, body: object) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json")


def first_mew(results: list[dict[str, Any]]) -> dict[str, Any]:
    return next(item for item in results if item["card_id"] == MEW)


READS: dict[str, Callable[[Client], dict[str, Any]]] = {
    "GET fair-price": lambda c: c.get(f"/api/v1/cards/{MEW}/fair-price/").json(),
    "GET fair-price dated": lambda c: c.get(
        f"/api/v1/cards/{MEW}/fair-price/?date={LAST.isoformat()}"
    ).json(),
    "POST fair-price": lambda c: post(c, "/api/v1/fair-price/", {"card_id": MEW}).json(),
    "POST batch": lambda c: post(c, "/api/v1/fair-price/batch/", {"card_ids": [MEW]}).json()[0][
        "result"
    ],
    "GET signals": lambda c: first_mew(c.get("/api/v1/signals/").json()["results"]),
    "GET cards": lambda c: first_mew(c.get("/api/v1/cards/").json()["results"]),
    "GET card": lambda c: c.get(f"/api/v1/cards/{MEW}/").json(),
}


@pytest.mark.parametrize("read", list(READS), ids=list(READS))
def test_prediction_carries_band_rule_and_horizon(api: Client, world, read: str) -> None:
    body = READS[read](api)
    assert {key: body[key] for key in EXPECTED} == EXPECTED


def test_a_card_without_a_prediction_has_null_prediction_fields(api: Client, world, make_card):
    make_card(card_id="unpriced-card")
    card = api.get("/api/v1/cards/unpriced-card/").json()
    assert {key: card[key] for key in EXPECTED} == dict.fromkeys(EXPECTED)


def test_the_schema_describes_the_new_fields(api: Client, world) -> None:
    schema = Client().get("/api/schema/?format=json").json()["components"]["schemas"]
    for name in ("FairPrice", "Card"):
        assert set(EXPECTED) <= set(schema[name]["properties"]), name
    assert {"buy", "sell", "base", "horizon_days"} <= set(schema["TrackRecord"]["properties"])
