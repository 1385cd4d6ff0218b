"""Hostile input under /api/: a 4xx JSON answer, never a 500 nor an HTML page (issue 13).

Through Django's test client; what only a real server can send (chunked bodies, headers
over gunicorn's limits) is in test_middleware_gunicorn.py.
"""

from __future__ import annotations

import logging

import pytest
from django.test import Client

MEW = "/api/v1/cards/sv2a-151-mew-ex-205/fair-price/"
MANY_FIELDS = "?" + "a&" * 1001


def assert_json_4xx(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) >= {"detail"}
    return body


@pytest.mark.parametrize("path", ["/api/v1/health/", "/api/v1/cards/", "/api/schema/"])
def test_too_many_query_fields_are_a_400_without_a_key(client: Client, db, path, caplog) -> None:
    with caplog.at_level(logging.INFO):
        response = client.get(path + MANY_FIELDS)
    body = assert_json_4xx(response, 400)
    assert "Too many query or form fields: at most 1000" in body["detail"]
    # One warning line, no traceback (it was ~59 lines with two tracebacks).
    assert not [r for r in caplog.records if r.exc_info]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 2


def test_too_many_query_fields_with_a_key_are_a_400(api: Client, world) -> None:
    assert_json_4xx(api.get(MEW + MANY_FIELDS), 400)


def test_deeply_nested_json_is_a_400(api: Client, world) -> None:
    response = api.post("/api/v1/fair-price/", "[" * 40_000, content_type="application/json")
    body = assert_json_4xx(response, 400)
    assert "nested too deeply" in body["detail"]


@pytest.mark.parametrize("charset", ["bz2", "zlib", "rot13", "hex", "base64"])
def test_a_body_declared_in_a_non_text_charset_is_refused(api: Client, world, charset) -> None:
    """Python's codecs would decompress or transform it: bz2 is a decompression bomb."""
    import bz2

    body = bz2.compress(b'{"card_id": "' + b"a" * 100_000 + b'"}')
    response = api.generic(
        "POST", "/api/v1/fair-price/", body, content_type=f"application/json; charset={charset}"
    )
    assert "Unsupported charset" in assert_json_4xx(response, 400)["detail"]


def test_a_body_declared_as_another_text_charset_is_read_in_it(api: Client, world) -> None:
    latin = '{"card_id": "sv2a-151-mew-ex-205", "date": "2026-05-10"}'.encode("latin-1")
    ok = api.generic(
        "POST", "/api/v1/fair-price/", latin, content_type="application/json; charset=latin-1"
    )
    assert ok.status_code == 200
    utf16_declared = api.generic(
        "POST",
        "/api/v1/fair-price/",
        b'{"card_id": "\xff"}',
        content_type="application/json; charset=utf-16",
    )
    assert_json_4xx(utf16_declared, 400)


def test_a_charset_python_does_not_know_falls_back_to_utf8(api: Client, world) -> None:
    body = b'{"card_id": "sv2a-151-mew-ex-205"}'
    response = api.generic(
        "POST", "/api/v1/fair-price/", body, content_type="application/json; charset=x"
    )
    assert response.status_code == 200


def test_bad_utf8_in_the_body_is_a_400(api: Client, world) -> None:
    response = api.generic(
        "POST",
        "/api/v1/fair-price/",
        b'{"card_id": "\xc3\x28\xff"}',
        content_type="application/json",
    )
    assert "JSON parse error" in assert_json_4xx(response, 400)["detail"]


def test_bad_utf8_in_the_query_and_path_is_a_4xx(api: Client, world) -> None:
    query = api.get("/api/v1/cards/?set=%C3%28%FF")
    assert query.status_code == 200 and query.json()["count"] == 0  # replaced, matches nothing
    path = api.get("/api/v1/cards/%C3%28%FF/fair-price/")
    assert_json_4xx(path, 404)


def test_a_host_not_allowed_gets_json_even_with_debug(client: Client, db, settings) -> None:
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["api.example.org"]
    for path in ("/api/v1/health/", "/api/v1/cards/", "/api/nowhere/"):
        response = client.get(path, HTTP_HOST="evil.example.com")
        assert assert_json_4xx(response, 400) == {"detail": "Bad request."}
        assert len(response.content) < 200  # not the 77 KB debug page


def test_a_host_not_allowed_gets_json_with_the_https_redirect_on(client: Client, db, settings):
    settings.ALLOWED_HOSTS = ["api.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    assert_json_4xx(client.get("/api/v1/cards/", HTTP_HOST="evil.example.com"), 400)


def test_plain_http_under_api_is_refused_with_json_not_redirected(
    api: Client, world, settings
) -> None:
    settings.SECURE_SSL_REDIRECT = True
    response = api.get(MEW)
    body = assert_json_4xx(response, 403)
    assert "HTTPS only" in body["detail"] and "revoke it" in body["detail"]
    assert "Location" not in response
    assert api.get(MEW, secure=True).status_code == 200
    # Probes stay exempt, and the admin is still redirected.
    assert api.get("/api/v1/health/").status_code == 200
    assert api.get("/admin/").status_code == 301


def test_csrf_failure_under_api_is_json(db, settings) -> None:
    from django.contrib.auth.models import User

    user = User.objects.create_user("misty", password="x", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/v1/fair-price/", {}, content_type="application/json")
    assert_json_4xx(response, 403)


def test_keyed_answers_are_private_and_vary_on_the_key_headers(api: Client, world) -> None:
    for path in (MEW, "/api/v1/cards/", "/api/v1/track-record/", "/api/v1/signals/"):
        response = api.get(path)
        assert response.status_code == 200
        cache_control = {p.strip() for p in response["Cache-Control"].split(",")}
        assert cache_control == {"private", "no-cache"}, path
        vary = {p.strip().lower() for p in response["Vary"].split(",")}
        assert {"x-api-key", "authorization"} <= vary, path
    posted = api.post(
        "/api/v1/fair-price/batch/", {"card_ids": ["x"]}, content_type="application/json"
    )
    assert "private" in posted["Cache-Control"]
    refused = Client(HTTP_X_API_KEY="nope.nope").get("/api/v1/cards/")
    assert refused.status_code == 401 and "private" in refused["Cache-Control"]


def test_public_answers_vary_on_the_key_headers_but_are_not_private(client: Client, db) -> None:
    response = client.get("/api/v1/health/")
    assert "Cache-Control" not in response or "private" not in response["Cache-Control"]
    assert "X-API-Key" in response["Vary"]
