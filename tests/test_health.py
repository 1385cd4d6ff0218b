from __future__ import annotations

from django.db import DatabaseError
from django.test import Client


def test_health_reports_ok_with_card_count(client: Client, make_card) -> None:
    make_card()
    make_card(active=False)
    response = client.get("/api/v1/health/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "cards": 1, "cache": "ok"}


def test_if_database_is_down_then_health_is_503(client: Client, db, monkeypatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise DatabaseError("connection refused")

    monkeypatch.setattr("prices.views.Card.objects.filter", broken)
    response = client.get("/api/v1/health/")
    assert response.status_code == 503
    assert response.json()["database"] == "error"


def test_if_cache_is_down_then_health_is_degraded(client: Client, db, monkeypatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr("prices.views.cache.set", broken)
    body = client.get("/api/v1/health/").json()
    assert (body["status"], body["cache"]) == ("degraded", "error")
