from __future__ import annotations

from django.db import DatabaseError
from django.test import Client


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
