"""The batch group's limit binds keys with their own rate too; health/ never answers 429
because the counters are down (issue 13)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

BATCH = "/api/v1/fair-price/batch/"
MEW = "/api/v1/cards/sv2a-151-mew-ex-205/fair-price/"
ONE = json.dumps({"card_ids": ["sv2a-151-mew-ex-205"]})


def batches(client: Client, key: str, n: int) -> list[int]:
    return [
        client.post(BATCH, ONE, content_type="application/json", HTTP_X_API_KEY=key).status_code
        for _ in range(n)
    ]


def test_a_key_with_a_higher_own_rate_still_gets_the_batch_default(
    client: Client, world, make_key, settings
) -> None:
    """A 100/m key got 100 batches of 100 ids a minute; now the batch default caps it."""
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "batch": "3/m", "read": "120/m"}
    generous = make_key("generous", rate="100/m")
    assert batches(client, generous.raw, 4) == [200, 200, 200, 429]
    limited = client.post(BATCH, ONE, content_type="application/json", HTTP_X_API_KEY=generous.raw)
    assert limited["X-RateLimit-Limit"] == "3" and limited["X-RateLimit-Remaining"] == "0"
    assert "(3 requests per window)" in limited.json()["detail"]
    # Its own rate still governs its reads.
    read = client.get(MEW, HTTP_X_API_KEY=generous.raw)
    assert read.status_code == 200 and read["X-RateLimit-Limit"] == "100"


def test_a_key_with_a_lower_own_rate_gets_its_own_rate_for_batches(
    client: Client, world, make_key, settings
) -> None:
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "batch": "30/m"}
    slow = make_key("slow", rate="2/m")
    assert batches(client, slow.raw, 3) == [200, 200, 429]


def test_headers_show_the_tighter_of_the_two_counts(
    client: Client, world, make_key, settings
) -> None:
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "batch": "5/m"}
    key = make_key("ten", rate="10/m")
    response = client.post(BATCH, ONE, content_type="application/json", HTTP_X_API_KEY=key.raw)
    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]) == ("5", "4")


@pytest.mark.redis
def test_health_answers_even_when_limits_fail_closed_and_counters_are_down(
    client: Client, api: Client, world, settings
) -> None:
    """RATELIMIT_FAIL_OPEN=0 made health/ answer 429, so the container turned unhealthy."""
    settings.RATELIMIT_FAIL_OPEN = False
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {
            **settings.CACHES["ratelimit"],
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens: refused at once
        },
    }
    health = client.get("/api/v1/health/", REMOTE_ADDR="192.0.2.10")  # counted: not loopback
    assert health.status_code == 200
    assert "X-RateLimit-Limit" not in health
    # Keyed reads still fail closed, as configured.
    refused = api.get(MEW)
    assert refused.status_code == 429
    assert "cannot be checked" in refused.json()["detail"]
