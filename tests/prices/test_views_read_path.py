"""The one read path: DRF's authentication, throttle and view share one cache round trip;
conditional GETs; and what a reader gets when Redis is down or hangs."""

from __future__ import annotations

import logging
import time
from collections import Counter

import pandas as pd
import pytest
from django.core.cache import caches
from django.test import Client

from accounts.keys import revoke_key
from pipelines.publishing import publish
from tests.support.api import LAST
from tests.support.faults import redis_caches

MEW = "sv2a-151-mew-ex-205"
URL = f"/api/v1/cards/{MEW}/fair-price/"
TIMEOUT = 0.2


@pytest.fixture
def cache_calls(monkeypatch) -> Counter[str]:
    """Calls made on the default and rate-limit caches, by ``alias.method``."""
    calls: Counter[str] = Counter()
    for alias in ("default", "ratelimit"):
        backend = caches[alias]
        for method in ("get", "get_many", "set", "add", "incr", "delete", "set_many"):
            original = getattr(backend, method)

            def counted(*args, _name=f"{alias}.{method}", _original=original, **kwargs):
                calls[_name] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(backend, method, counted)
    return calls


@pytest.mark.redis
def test_a_cached_keyed_read_fetches_key_and_prediction_in_one_round_trip(
    api: Client, world, cache_calls
) -> None:
    assert api.get(URL).status_code == 200  # fills the key's and the prediction's entries
    cache_calls.clear()
    response = api.get(URL)
    assert response.status_code == 200
    assert response.json()["card_id"] == MEW
    # One MGET of the key's version and row, the generation and the prediction; the
    # rate-limit count is django-ratelimit's own (SET NX, then INCR).
    assert cache_calls == Counter({"default.get_many": 1, "ratelimit.add": 1, "ratelimit.incr": 1})


def test_a_fair_price_carries_an_etag_and_an_unchanged_one_answers_304(api: Client, world) -> None:
    first = api.get(URL)
    etag = first["ETag"]
    assert etag.startswith('"') and len(etag) > 10
    assert "private" in first["Cache-Control"]
    again = api.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert int(again["X-RateLimit-Remaining"]) < int(first["X-RateLimit-Remaining"])
    # Another day is another body, so another tag: the client's copy is not reused.
    dated = api.get(URL, {"date": "2026-05-01"}, HTTP_IF_NONE_MATCH=etag)
    assert dated.status_code == 200
    assert dated["ETag"] != etag


def test_a_new_publication_changes_the_etag(
    api: Client, world, django_capture_on_commit_callbacks, make_version
) -> None:
    etag = api.get(URL)["ETag"]
    row = {
        "card_id": MEW, "date": pd.Timestamp(LAST), "market_price": 109.0,
        "fair_price": 150.0, "fair_low": 140.0, "fair_high": 160.0,
        "deviation": 109 / 150 - 1, "signal": "BUY",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        new = make_version("model", registered_name="pokewatch-fair-value", registered_version="4")
        publish(new, pd.DataFrame([row]))
    changed = api.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["fair_price"] == "150.00"
    assert changed["ETag"] != etag


def test_signals_answer_conditional_gets_too(api: Client, world) -> None:
    etag = api.get("/api/v1/signals/")["ETag"]
    assert api.get("/api/v1/signals/", HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_without_a_valid_key_there_is_no_304(client: Client, world) -> None:
    response = client.get(URL, HTTP_IF_NONE_MATCH="*")
    assert response.status_code == 401


# --- Redis down or hanging -------------------------------------------------------------


@pytest.fixture
def broken_redis(settings, unreachable_redis) -> str:
    """Cache and counters on a Redis that is down or hangs, behind the site's client."""
    settings.CACHES = redis_caches(unreachable_redis, TIMEOUT)
    return unreachable_redis


def _timed_get(client: Client, url: str, **headers: str) -> tuple[int, float]:
    started = time.monotonic()
    response = client.get(url, **headers)
    return response.status_code, time.monotonic() - started


def _database_read_seconds(api: Client) -> float:
    """How long a read takes that finds nothing cached (the reference for an outage)."""
    seconds = []
    for _ in range(3):
        caches["default"].delete_pattern("pred*")
        seconds.append(_timed_get(api, URL)[1])
    return min(seconds)


@pytest.mark.redis
def test_if_redis_is_down_or_hangs_then_reads_answer_from_the_database_in_time(
    settings, unreachable_redis, world, valid_key, caplog
) -> None:
    api = Client(HTTP_X_API_KEY=valid_key.raw)
    usual = _database_read_seconds(api)
    settings.CACHES = redis_caches(unreachable_redis, TIMEOUT)
    caplog.set_level(logging.INFO)
    answers = [_timed_get(api, URL) for _ in range(6)]
    assert [status for status, _ in answers] == [200] * 6
    # The first call to each Redis use costs TIMEOUT at most; then it counts as down.
    assert answers[0][1] < usual + 2 * TIMEOUT + 0.5
    assert max(seconds for _, seconds in answers[1:]) < usual + 0.5
    assert max(seconds for _, seconds in answers) < usual + 1.0  # the promise (DESIGN §7)
    # The log: one warning per Redis use (cache, counters) for the interval, no traceback.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(r.exc_info is None for r in caplog.records)
    assert Counter(r.getMessage().split(" unreachable")[0] for r in warnings) == {
        f"Redis 127.0.0.1:{unreachable_redis.rsplit(':', 1)[1]}/1": 1,
        f"Redis 127.0.0.1:{unreachable_redis.rsplit(':', 1)[1]}/2": 1,
        "rate limiting unavailable (counter cache down): requests let through": 1,
    }
    assert api.get(URL).json()["card_id"] == MEW
    # The key is still checked, from the database.
    assert _timed_get(Client(HTTP_X_API_KEY=valid_key.raw + "x"), URL)[0] == 401
    assert _timed_get(Client(), URL)[0] == 401
    revoke_key(valid_key.key.prefix)
    status, seconds = _timed_get(api, URL)
    assert status == 401
    assert seconds < usual + 1.0


@pytest.mark.redis
def test_if_redis_hangs_and_limits_fail_closed_then_reads_are_refused(
    broken_redis, world, valid_key, settings
) -> None:
    settings.RATELIMIT_FAIL_OPEN = False
    started = time.monotonic()
    response = Client(HTTP_X_API_KEY=valid_key.raw).get(URL)
    assert time.monotonic() - started < 12 * TIMEOUT
    assert response.status_code == 429
    assert response.json() == {
        "detail": "Rate limits cannot be checked right now; try again shortly."
    }
    assert response["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 200), ("?date=", 200), ("?date=2026-05-01", 200), ("?date=2026-13-01", 400),
     ("?date=2026-05-01&date=x", 400), ("?date=1999-01-01", 404)],
)  # fmt: skip
def test_the_date_parameter_is_read_as_the_date_serializer_reads_it(
    api: Client, world, query: str, status: int
) -> None:
    response = api.get(URL + query)
    assert response.status_code == status
    if status == 400:
        assert response.json()["detail"].startswith("date: Date has wrong format.")


@pytest.mark.redis
@pytest.mark.parametrize("lost", ["default", "ratelimit"])
def test_if_only_the_cache_or_only_the_counters_are_unreachable_then_reads_still_answer(
    settings, unreachable_redis, world, make_key, lost: str
) -> None:
    """One Redis use lost (a closed port or a black hole), the other still on the real Redis."""
    real = dict(settings.CACHES)
    broken = redis_caches(unreachable_redis, TIMEOUT)[lost]
    settings.CACHES = {**real, lost: broken}
    issued = make_key("three a minute", rate="3/m")
    api = Client(HTTP_X_API_KEY=issued.raw)
    answers = [_timed_get(api, URL) for _ in range(5)]
    assert max(seconds for _, seconds in answers) < 1.0 + TIMEOUT
    statuses = [status for status, _ in answers]
    if lost == "default":
        # No cache: the key and the prediction come from the database; the counters still
        # count, so the key's limit holds.
        assert statuses == [200, 200, 200, 429, 429]
    else:
        # No counters: limits fail open (RATELIMIT_FAIL_OPEN), the cache still serves.
        assert statuses == [200] * 5
        assert "X-RateLimit-Limit" not in api.get(URL)
    assert Client(HTTP_X_API_KEY=issued.raw + "x").get(URL).status_code == 401
