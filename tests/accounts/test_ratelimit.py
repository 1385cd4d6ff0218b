from __future__ import annotations

import pytest
import redis
from django.http import HttpRequest
from django.test import Client, RequestFactory

from accounts.ratelimit import client_ip, is_local_probe

MEW = "/api/v1/cards/sv2a-151-mew-ex-205/fair-price/"
HEALTH = "/api/v1/health/"


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
    codes = [client.get(HEALTH, REMOTE_ADDR="192.0.2.10").status_code for _ in range(3)]
    other_ip = client.get(HEALTH, REMOTE_ADDR="10.9.9.9")
    assert codes == [200, 200, 429]
    assert other_ip.status_code == 200


# --- The client IP behind proxies (POKEWATCH_TRUSTED_PROXY_HOPS) ------------------------


def _from(remote: str, forwarded: str | None = None) -> HttpRequest:
    request = RequestFactory().get(HEALTH, REMOTE_ADDR=remote)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return request


@pytest.mark.parametrize(
    ("hops", "forwarded", "ip"),
    [
        (0, "203.0.113.7", "10.0.0.2"),  # no proxy trusted: the header is the client's word
        (1, "203.0.113.7", "203.0.113.7"),  # the proxy appended what it saw
        (1, "1.2.3.4, 127.0.0.1, 203.0.113.7", "203.0.113.7"),  # spoofed entries ignored
        (2, "1.2.3.4, 203.0.113.7, 198.51.100.1", "203.0.113.7"),  # CDN, then the balancer
        (2, "203.0.113.7", "203.0.113.7"),  # came in past the first proxy: all trusted
        (1, "1.2.3.4, not-an-address", "10.0.0.2"),
        (1, "", "10.0.0.2"),
        (1, "2001:db8::7", "2001:db8::7"),
    ],
)
def test_the_client_ip_is_the_nth_forwarded_address_from_the_right(
    settings, hops: int, forwarded: str, ip: str
) -> None:
    settings.POKEWATCH_TRUSTED_PROXY_HOPS = hops
    assert client_ip(_from("10.0.0.2", forwarded)) == ip


def test_if_the_client_rotates_forwarded_entries_then_it_is_still_limited(
    client: Client, db, settings
) -> None:
    """POKEWATCH_TRUSTED_PROXY=1 trusted the first entry: rotating it bypassed the limit."""
    settings.POKEWATCH_TRUSTED_PROXY_HOPS = 1
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "public": "2/m"}
    codes = [
        client.get(
            HEALTH, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"198.18.0.{n}, 203.0.113.7"
        ).status_code
        for n in range(4)
    ]
    assert codes == [200, 200, 429, 429]
    another_client = client.get(HEALTH, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert another_client.status_code == 200


@pytest.mark.parametrize(
    ("hops", "proxy"),
    [(1, "10.0.0.2"), (0, "127.0.0.1")],  # behind a proxy; a same-host proxy not trusted
)
def test_spoofed_traffic_never_uses_up_the_local_health_probe(
    client: Client, db, settings, hops: int, proxy: str
) -> None:
    """After spoofed traffic "from 127.0.0.1", the container's own health check got 429."""
    settings.POKEWATCH_TRUSTED_PROXY_HOPS = hops
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "public": "2/m"}
    spoofed = [
        client.get(
            HEALTH, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.7"
        ).status_code
        for _ in range(3)
    ]
    assert spoofed == [200, 200, 429]
    probes = [client.get(HEALTH, REMOTE_ADDR="127.0.0.1") for _ in range(5)]
    assert [probe.status_code for probe in probes] == [200] * 5
    assert "X-RateLimit-Limit" not in probes[-1]  # not counted at all
    assert is_local_probe(_from("::1"))
    assert not is_local_probe(_from("127.0.0.1", "203.0.113.7"))
    assert not is_local_probe(_from("192.0.2.10"))


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
