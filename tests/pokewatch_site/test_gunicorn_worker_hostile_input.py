"""What a real gunicorn (the production configuration and worker) answers to input that
Django's test client cannot send: chunked bodies, headers over gunicorn's limits, charsets
Django fails on while building its request. Always JSON, never a 500 nor HTML (issue 13).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from tests.support.gunicorn import Gunicorn

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Gunicorn]:
    with django_db_blocker.unblock(), Gunicorn(tmp_path_factory.mktemp("gunicorn")) as running:
        yield running


def send(server: Gunicorn, method: str, path: str, body=None, headers=None):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def chunks(payload: bytes, size: int = 7) -> Iterator[bytes]:
    """An iterable body: http.client sends it with ``Transfer-Encoding: chunked``."""
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


def test_a_chunked_body_reaches_the_view(server, transactional_db, world, valid_key) -> None:
    payload = json.dumps({"card_id": "sv2a-151-mew-ex-205"}).encode()
    status, content_type, body = send(
        server,
        "POST",
        "/api/v1/fair-price/",
        chunks(payload),
        {"X-API-Key": valid_key.raw, "Content-Type": "application/json"},
    )
    assert status == 200, body  # was 400 "card_id: This field is required."
    assert json.loads(body)["card_id"] == "sv2a-151-mew-ex-205"


def test_a_chunked_batch_reaches_the_view(server, transactional_db, world, valid_key) -> None:
    payload = json.dumps({"card_ids": ["sv2a-151-mew-ex-205", "nope"]}).encode()
    status, _, body = send(
        server,
        "POST",
        "/api/v1/fair-price/batch/",
        chunks(payload, 3),
        {"X-API-Key": valid_key.raw, "Content-Type": "application/json"},
    )
    assert status == 200, body
    assert [item["found"] for item in json.loads(body)] == [True, False]


def test_a_chunked_body_over_the_limit_is_a_json_413(server) -> None:
    payload = b'{"card_ids": ["' + b"a" * (64 * 1024) + b'"]}'
    status, content_type, body = send(
        server,
        "POST",
        "/api/v1/fair-price/batch/",
        chunks(payload, 4096),
        {"X-API-Key": "x.y", "Content-Type": "application/json"},
    )
    assert status == 413
    assert content_type == "application/json"
    assert "at most 65536 bytes" in json.loads(body)["detail"]


@pytest.mark.parametrize("charset", ["bz2", "zlib", "rot13"])
def test_a_non_text_charset_is_a_json_400_before_django(server, charset: str) -> None:
    """Django fails building its request (LookupError decoding the query): was a 500."""
    status, content_type, body = send(
        server,
        "GET",
        "/api/v1/health/?a=b",
        headers={"Content-Type": f"text/plain; charset={charset}"},
    )
    assert status == 400
    assert content_type == "application/json"
    assert "Unsupported charset" in json.loads(body)["detail"]


@pytest.mark.parametrize(
    ("headers", "path", "status"),
    [
        ({"X-Big": "a" * 9000}, "/api/v1/health/", 431),  # limit_request_field_size 8190
        ({f"X-H{i}": "1" for i in range(120)}, "/api/v1/health/", 431),  # limit_request_fields
        ({}, "/api/v1/health/?" + "a" * 5000, 400),  # limit_request_line 4094
    ],
    ids=["huge-header", "too-many-headers", "huge-request-line"],
)
def test_gunicorns_own_errors_are_json(server, headers, path, status) -> None:
    got, content_type, body = send(server, "GET", path, headers=headers)
    assert got == status
    assert content_type == "application/json"
    assert json.loads(body)["detail"]
    assert b"<html" not in body


def test_a_malformed_request_line_gets_json_from_gunicorn(server) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/health/ HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n")
        answer = sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["detail"].startswith("Bad Request")


def test_nothing_above_was_a_server_error(server) -> None:
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    assert "Error handling request" not in log
