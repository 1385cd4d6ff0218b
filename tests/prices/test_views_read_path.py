"""The one read path: DRF's authentication, throttle and view share one cache round trip;
conditional GETs; and what a reader gets when Redis is down or hangs."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pandas as pd
import pytest
from django.core.cache import caches
from django.test import Client

from accounts.keys import revoke_key
from pipelines.publishing import publish
from tests.support.api import LAST

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
def hanging_redis() -> Iterator[str]:
    """A server that accepts connections and reads, but never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _redis_caches(base: str) -> dict:
    options = {
        "IGNORE_EXCEPTIONS": True,
        "SOCKET_CONNECT_TIMEOUT": TIMEOUT,
        "SOCKET_TIMEOUT": TIMEOUT,
    }
    return {
        alias: {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{base}/{db}",
            "KEY_PREFIX": "pokewatch",
            "OPTIONS": options,
        }
        for alias, db in (("default", 1), ("ratelimit", 2))
    }


@pytest.fixture(params=["down", "hanging"])
def broken_redis(request, settings, hanging_redis) -> str:
    base = "redis://127.0.0.1:1" if request.param == "down" else hanging_redis
    settings.CACHES = _redis_caches(base)
    return str(request.param)


def _timed_get(client: Client, url: str, **headers: str) -> tuple[int, float]:
    started = time.monotonic()
    response = client.get(url, **headers)
    return response.status_code, time.monotonic() - started


@pytest.mark.redis
def test_if_redis_is_down_or_hangs_then_reads_answer_from_the_database_in_time(
    broken_redis, world, valid_key
) -> None:
    api = Client(HTTP_X_API_KEY=valid_key.raw)
    answers = [_timed_get(api, URL) for _ in range(4)]
    assert [status for status, _ in answers] == [200] * 4
    # Each Redis call gives up after TIMEOUT; a read makes a handful of them.
    assert max(seconds for _, seconds in answers) < 12 * TIMEOUT
    assert api.get(URL).json()["card_id"] == MEW
    # The key is still checked, from the database.
    assert _timed_get(Client(HTTP_X_API_KEY=valid_key.raw + "x"), URL)[0] == 401
    assert _timed_get(Client(), URL)[0] == 401
    revoke_key(valid_key.key.prefix)
    status, seconds = _timed_get(api, URL)
    assert status == 401
    assert seconds < 12 * TIMEOUT


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
