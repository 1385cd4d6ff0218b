from __future__ import annotations

import logging
import time

import pytest
from django.db import DatabaseError
from django.test import Client

from tests.support.faults import redis_caches


def test_health_reports_ok_with_card_count(client: Client, make_card) -> None:
    make_card()
    make_card(active=False)
    response = client.get("/api/v1/health/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "cards": 1,
        "champion": None,
        "cache": "ok",
        "broker": "ok",
    }


def test_if_database_is_down_then_health_is_503(client: Client, db, monkeypatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise DatabaseError("connection refused")

    monkeypatch.setattr("pokewatch_site.health.Card.objects.filter", broken)
    response = client.get("/api/v1/health/")
    assert response.status_code == 503
    assert response.json()["database"] == "error"


def test_if_cache_is_down_then_health_is_degraded(client: Client, db, monkeypatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr("django.core.cache.cache.set", broken)
    body = client.get("/api/v1/health/").json()
    assert (body["status"], body["cache"]) == ("degraded", "error")


def test_if_broker_is_down_then_health_is_degraded(client: Client, db, settings) -> None:
    from pokewatch_site.celery import app

    app.conf.broker_url, original = "redis://127.0.0.1:1/0", app.conf.broker_url
    try:
        body = client.get("/api/v1/health/").json()
    finally:
        app.conf.broker_url = original
    assert (body["status"], body["broker"]) == ("degraded", "error")


# --- hung means down: health answers "degraded" within 2 s -----------------------------


def _timed_health(client: Client) -> tuple[dict, float]:
    started = time.monotonic()
    response = client.get("/api/v1/health/")
    assert response.status_code == 200
    return response.json(), time.monotonic() - started


@pytest.mark.redis
def test_if_the_broker_is_down_or_hangs_then_health_is_degraded_within_2_s(
    client: Client, db, broker_at, unreachable_redis, caplog
) -> None:
    broker_at(f"{unreachable_redis}/0")
    for _ in range(3):
        body, seconds = _timed_health(client)
        assert (body["status"], body["cache"], body["broker"]) == ("degraded", "ok", "error")
        assert seconds < 2.0
    # One line for the broker over the three checks, and no traceback.
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1
    assert warned[0].startswith("Celery broker unreachable (")
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.redis
def test_if_cache_and_counters_hang_then_health_is_degraded_within_2_s(
    client: Client, db, settings, unreachable_redis, caplog
) -> None:
    settings.CACHES = redis_caches(unreachable_redis, 0.5)  # the site's timeouts
    for _ in range(3):
        body, seconds = _timed_health(client)
        assert (body["status"], body["cache"], body["broker"]) == ("degraded", "error", "ok")
        assert seconds < 2.0
    assert all(r.exc_info is None for r in caplog.records)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) <= 3  # cache, counters, and "rate limiting unavailable": once each
