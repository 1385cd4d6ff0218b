"""Keys, status codes, headers and JSON errors across the API (DESIGN.md §5)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

MEW = "/api/v1/cards/sv2a-151-mew-ex-205/fair-price/"


@pytest.mark.parametrize("state", ["missing", "unknown", "revoked", "expired"])
def test_if_key_is_not_valid_then_401_with_challenge(
    client: Client, world, state: str, revoked_key, expired_key, missing_raw_key
) -> None:
    headers = {
        "missing": {},
        "unknown": {"HTTP_X_API_KEY": missing_raw_key},
        "revoked": {"HTTP_X_API_KEY": revoked_key.raw},
        "expired": {"HTTP_X_API_KEY": expired_key.raw},
    }[state]
    response = client.get(MEW, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail"}


def test_key_is_accepted_in_either_header(client: Client, world, valid_key) -> None:
    assert client.get(MEW, HTTP_X_API_KEY=valid_key.raw).status_code == 200
    assert client.get(MEW, HTTP_AUTHORIZATION=f"Api-Key {valid_key.raw}").status_code == 200


def test_staff_session_gets_the_browsable_api_without_a_key(admin_client: Client, world) -> None:
    response = admin_client.get("/api/v1/cards/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_everyone_else_gets_json_even_asking_for_html(client: Client, world, valid_key) -> None:
    anonymous = client.get("/api/v1/cards/", HTTP_ACCEPT="text/html")
    keyed = client.get("/api/v1/cards/", HTTP_ACCEPT="text/html", HTTP_X_API_KEY=valid_key.raw)
    assert anonymous.status_code == 401
    assert anonymous["Content-Type"] == "application/json"
    assert keyed.status_code == 200 and keyed["Content-Type"] == "application/json"


def test_non_staff_session_is_401(client: Client, world, django_user_model) -> None:
    user = django_user_model.objects.create_user("ash", password="pikachu-123")
    client.force_login(user)
    assert client.get("/api/v1/cards/").status_code == 401


def test_request_id_is_echoed_when_sane_and_made_otherwise(api: Client, world) -> None:
    echoed = api.get(MEW, HTTP_X_REQUEST_ID="client-req-42")
    insane = api.get(MEW, HTTP_X_REQUEST_ID="<script>alert(1)</script>")
    unknown = api.get("/api/v1/nowhere/")
    assert echoed["X-Request-ID"] == "client-req-42"
    assert len(insane["X-Request-ID"]) == 32 and "<" not in insane["X-Request-ID"]
    assert unknown["X-Request-ID"]


def test_request_id_is_in_the_log_lines_of_the_request(api: Client, world, caplog) -> None:
    api.get("/api/v1/cards/ghost/", HTTP_X_REQUEST_ID="trace-me-1")
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and all(getattr(r, "request_id", None) == "trace-me-1" for r in records)


def test_security_headers(api: Client, world) -> None:
    response = api.get(MEW)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response  # DEBUG: no HSTS


def test_hsts_when_not_debug(api: Client, world, settings) -> None:
    settings.SECURE_HSTS_SECONDS = 31_536_000
    response = api.get(MEW, secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_cors_preflight_allows_the_key_header_and_exposes_ours(client: Client, world) -> None:
    origin = "http://localhost:3000"
    preflight = client.options(
        MEW,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key",
    )
    assert preflight["Access-Control-Allow-Origin"] == origin
    assert "x-api-key" in preflight["Access-Control-Allow-Headers"]
    actual = client.get(MEW, HTTP_ORIGIN=origin)
    exposed = actual["Access-Control-Expose-Headers"]
    for header in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-Request-ID"):
        assert header in exposed
    other = client.get(MEW, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


def test_json_errors_for_405_404_and_413(api: Client, world, settings) -> None:
    not_allowed = api.delete("/api/v1/cards/")
    unknown = api.get("/api/v1/does/not/exist")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    huge = api.post(
        "/api/v1/fair-price/", json.dumps({"card_id": "x" * 5000}), content_type="application/json"
    )
    assert (not_allowed.status_code, unknown.status_code, huge.status_code) == (405, 404, 413)
    for response in (not_allowed, unknown, huge):
        assert response["Content-Type"] == "application/json"
        assert "detail" in response.json()


def test_if_the_view_crashes_then_500_is_json_without_traceback(
    api: Client, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("prices.selectors.fair_price", explode)
    client = Client(HTTP_X_API_KEY=api.defaults["HTTP_X_API_KEY"], raise_request_exception=False)
    response = client.get(MEW)
    assert response.status_code == 500
    assert response.json()["detail"] == "Internal server error."
    assert "secret internals" not in response.text and "Traceback" not in response.text


def test_schema_and_docs_are_public(client: Client, db) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    docs = client.get("/api/docs/")
    assert schema.status_code == 200 and docs.status_code == 200
    spec = schema.json()
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "Or send `Authorization: Api-Key <key>`.",
    }
    fair = spec["paths"]["/api/v1/fair-price/"]["post"]
    assert {"200", "400", "401", "404", "429"} <= set(fair["responses"])
    assert "cdn" not in docs.text.lower()  # Swagger UI is served locally


def test_a_host_not_allowed_is_a_json_400_under_api_only(client: Client, db, settings) -> None:
    settings.ALLOWED_HOSTS = ["api.example.org"]
    api = client.get("/api/v1/health/", HTTP_HOST="evil.example.net")
    admin = client.get("/admin/login/", HTTP_HOST="evil.example.net")
    assert api.status_code == admin.status_code == 400
    assert api.json() == {"detail": "Bad request."}
    assert admin["Content-Type"].startswith("text/html")
