from __future__ import annotations

import pytest
import redis
from django.test import Client

MEW = "/api/v1/cards/sv2a-151-mew-ex-205/fair-price/"


def test_limited_responses_carry_limit_headers(api: Client, world, settings) -> None:
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "read": "5/m"}
    first, second = api.get(MEW), api.get(MEW)
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("5", "4")
    assert second["X-RateLimit-Remaining"] == "3"


def test_if_a_key_exceeds_its_own_rate_then_429_with_retry_after(
    client: Client, world, make_key
) -> None:
    slow = make_key("slow", rate="2/m")
    other = make_key("other")
    responses = [client.get(MEW, HTTP_X_API_KEY=slow.raw) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    limited = responses[-1]
    assert 1 <= int(limited["Retry-After"]) <= 60
    wait = limited["Retry-After"]
    assert limited.json()["detail"].endswith(f"Expected available in {wait} seconds.")
    assert limited.json()["detail"].startswith("Rate limit exceeded (2 requests per window).")
    assert limited.json()["detail"].count("available") == 1
    assert limited["X-RateLimit-Remaining"] == "0"
    # Limits are per key: another key is untouched.
    assert client.get(MEW, HTTP_X_API_KEY=other.raw).status_code == 200


def test_batch_has_its_own_budget(api: Client, world, settings) -> None:
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "batch": "1/m", "read": "100/m"}
    body = '{"card_ids": ["sv2a-151-mew-ex-205"]}'
    batch = [
        api.post("/api/v1/fair-price/batch/", body, content_type="application/json")
        for _ in range(2)
    ]
    assert [r.status_code for r in batch] == [200, 429]
    assert api.get(MEW).status_code == 200


def test_public_health_is_limited_per_client_ip(client: Client, db, settings) -> None:
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "public": "2/m"}
    codes = [client.get("/api/v1/health/").status_code for _ in range(3)]
    other_ip = client.get("/api/v1/health/", REMOTE_ADDR="10.9.9.9")
    assert codes == [200, 200, 429]
    assert other_ip.status_code == 200


@pytest.mark.redis
def test_counters_live_in_their_own_redis_db(api: Client, world, valid_key, settings) -> None:
    api.get(MEW)
    ratelimit_db = redis.Redis.from_url(settings.CACHES["ratelimit"]["LOCATION"])
    cache_db = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert settings.REDIS_RATELIMIT_DB != settings.REDIS_CACHE_DB
    assert list(ratelimit_db.scan_iter("pokewatch:1:rl:*"))
    assert not list(cache_db.scan_iter("pokewatch:1:rl:*"))


def test_if_the_counter_cache_is_down_then_reads_fail_open(api: Client, world, settings) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/2",  # nothing listens on port 1
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.2},
        },
    }
    response = api.get(MEW)
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response
