"""The caches' circuit breaker, on real servers: a Redis that hangs (a black hole) or is
down (a closed port) costs one timeout per interval and one warning line, then counts as
down; a Redis that answers again is used again."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.core.cache import cache, caches
from redis.exceptions import ConnectionError as RedisConnectionError

from pokewatch_site import outages
from tests.support.faults import redis_caches

TIMEOUT = 0.2
INTERVAL = 0.6


@pytest.fixture
def breaker(settings) -> None:
    settings.POKEWATCH_OUTAGE_INTERVAL = INTERVAL


def _timed(call, *args):
    started = time.monotonic()
    result = call(*args)
    return result, time.monotonic() - started


def test_the_site_caches_use_the_breaker_and_log_no_ignored_exceptions(settings) -> None:
    from pokewatch_site import settings as site_settings

    caches_settings: dict[str, Any] = site_settings.CACHES
    if "django_redis" in caches_settings["default"]["BACKEND"]:
        for alias in ("default", "ratelimit"):
            options = caches_settings[alias]["OPTIONS"]
            assert options["CLIENT_CLASS"] == "pokewatch_site.redis_client.CircuitBreakerClient"
            assert options["SOCKET_TIMEOUT"] <= 0.5
            assert options["SOCKET_CONNECT_TIMEOUT"] <= 0.5
    assert site_settings.DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS is False


@pytest.mark.redis
def test_an_unreachable_redis_costs_one_timeout_and_one_warning_per_interval(
    settings, breaker, unreachable_redis, caplog
) -> None:
    settings.CACHES = redis_caches(unreachable_redis, TIMEOUT)
    caplog.set_level(logging.INFO)
    first, seconds = _timed(cache.get, "some-key")
    assert first is None
    assert seconds < TIMEOUT + 0.15
    # Down for the interval: every call is a miss at once, and nothing more is logged.
    started = time.monotonic()
    for _ in range(50):
        assert cache.get_many(["a", "b"]) == {}
        cache.set("a", 1)
        assert cache.add("a", 1) is None
        assert cache.incr("a") is None
    assert time.monotonic() - started < 0.1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    port = unreachable_redis.rsplit(":", 1)[1]
    assert warnings[0].getMessage().startswith(f"Redis 127.0.0.1:{port}/1 unreachable (")
    assert f"treated as down for {INTERVAL:g} s" in warnings[0].getMessage()
    # After the interval, one call tries the server again: one more timeout, one more line.
    time.sleep(INTERVAL)
    _, seconds = _timed(cache.get, "some-key")
    assert seconds < TIMEOUT + 0.15
    assert cache.get("some-key") is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.redis
def test_each_redis_use_is_its_own_dependency(settings, breaker, black_hole, caplog) -> None:
    settings.CACHES = redis_caches(black_hole, TIMEOUT)
    for _ in range(3):
        caches["default"].get("a")
        caches["ratelimit"].get("a")
    warned = sorted(
        r.getMessage().split(" unreachable")[0]
        for r in caplog.records
        if r.levelno >= logging.WARNING
    )
    port = black_hole.rsplit(":", 1)[1]
    assert warned == [f"Redis 127.0.0.1:{port}/1", f"Redis 127.0.0.1:{port}/2"]


@pytest.mark.redis
def test_without_ignore_exceptions_the_refusal_is_a_redis_connection_error(
    settings, breaker
) -> None:
    caches_settings = redis_caches("redis://127.0.0.1:1", TIMEOUT)
    caches_settings["default"]["OPTIONS"] = {
        **caches_settings["default"]["OPTIONS"],
        "IGNORE_EXCEPTIONS": False,
    }
    settings.CACHES = caches_settings
    with pytest.raises(RedisConnectionError):
        cache.get("a")  # the real failure
    with pytest.raises(RedisConnectionError, match="treated as down"):
        cache.get("a")  # refused at once


@pytest.mark.redis
def test_a_redis_that_answers_again_is_used_again(breaker, caplog) -> None:
    caplog.set_level(logging.INFO)
    dependency = cache.client.dependency  # type: ignore[attr-defined]
    cache.set("breaker-probe", "here")
    outages.failed(dependency, "a test said so")
    assert cache.get("breaker-probe") is None  # skipped: counts as down
    time.sleep(INTERVAL)
    assert cache.get("breaker-probe") == "here"  # tried again, and it answered
    assert cache.get("breaker-probe") == "here"
    assert [r.getMessage() for r in caplog.records if r.name == "pokewatch_site.outages"] == [
        f"{dependency} unreachable (a test said so); treated as down for {INTERVAL:g} s",
        f"{dependency} reachable again",
    ]
    cache.delete("breaker-probe")
