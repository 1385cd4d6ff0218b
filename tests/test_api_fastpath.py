"""Cached fair prices in one Redis round trip (prices.fastpath), on the real Redis.

The fast path must be invisible to clients: same body and headers as the DRF view, the
same rate-limit counter, revocation still immediate, every unusual request handed to
the view. These tests count the round trips actually sent to Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import redis
from django.core.cache import caches
from django.test import Client
from django_ratelimit.core import get_usage

from accounts import keys, ratelimit
from accounts.models import APIKey
from accounts.ratelimit import rate_for, ratelimit_key
from prices import caching, fastpath
from tests.api_fixtures import LAST

pytestmark = pytest.mark.redis

MEW = "sv2a-151-mew-ex-205"
URL = f"/api/v1/cards/{MEW}/fair-price/"
# Headers that differ between any two responses, whichever path answers.
PER_REQUEST = {"X-Request-ID", "X-RateLimit-Remaining"}


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the requests written to any Redis connection (a pipeline is one)."""
    sent: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):  # type: ignore[no-untyped-def]
        sent.append(1)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    yield sent


def _trips(round_trips: list[int], call) -> tuple[object, int]:  # type: ignore[no-untyped-def]
    round_trips.clear()
    result = call()
    return result, len(round_trips)


def _counter_value(key: APIKey) -> int:
    """The count django-ratelimit itself reads for this key's "read" group."""
    request = SimpleNamespace(auth=key, user=None, method="GET")
    usage = get_usage(request, group="read", key=ratelimit_key, rate=rate_for, increment=False)
    assert usage is not None
    return int(usage["count"])


def test_a_known_key_reads_a_cached_price_in_one_round_trip(
    api: Client, world, round_trips, settings
) -> None:
    api.get(URL)  # verifies the key here and fills the cache
    api.get(URL)  # the first fast read also connects (handshake commands)
    fast, fast_trips = _trips(round_trips, lambda: api.get(URL))
    settings.POKEWATCH_FAST_READS = False
    slow, slow_trips = _trips(round_trips, lambda: api.get(URL))

    assert fast.status_code == slow.status_code == 200
    assert fast_trips == 1
    assert slow_trips >= 4  # key row, counter (add + incr), prediction and hit counter


def test_fast_answer_is_the_views_answer(api: Client, world, settings) -> None:
    api.get(URL, {"date": LAST.isoformat()})
    fast = api.get(URL, {"date": LAST.isoformat()})
    settings.POKEWATCH_FAST_READS = False
    slow = api.get(URL, {"date": LAST.isoformat()})

    assert fast.content == slow.content
    assert fast.status_code == slow.status_code == 200
    fast_headers = {k: v for k, v in fast.headers.items() if k not in PER_REQUEST}
    slow_headers = {k: v for k, v in slow.headers.items() if k not in PER_REQUEST}
    assert fast_headers == slow_headers
    assert fast_headers["Allow"] == "GET, HEAD, OPTIONS"
    assert fast_headers["Content-Type"] == "application/json"


def test_counts_in_django_ratelimits_own_counter(api: Client, world, valid_key) -> None:
    remaining = [api.get(URL)["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["119", "118", "117"]
    assert _counter_value(valid_key.key) == 3


def test_over_the_limit_is_a_429_from_the_view(client: Client, world, make_key) -> None:
    slow = make_key("slow", rate="3/m")
    responses = [client.get(URL, HTTP_X_API_KEY=slow.raw) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    limited = responses[-1]
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["detail"].startswith("Rate limit exceeded (3 requests per window).")
    assert _counter_value(slow.key) == 4


def test_a_miss_handed_to_the_view_is_counted_once(api: Client, world, valid_key) -> None:
    api.get(URL)
    caching.clear()  # the next read misses after the round trip has counted it
    response = api.get(URL)
    stats = caching.stats()
    assert response.status_code == 200
    assert response["X-RateLimit-Remaining"] == "118"
    assert _counter_value(valid_key.key) == 2
    assert (stats.hits, stats.misses) == (0, 1)  # the hit counted in advance was taken back


def test_hits_are_counted_in_the_shared_counter(api: Client, world) -> None:
    for _ in range(4):
        api.get(URL)
    stats = caching.stats()
    assert (stats.hits, stats.misses) == (3, 1)


def test_a_wrong_secret_never_touches_the_keys_counter(
    client: Client, world, valid_key, round_trips
) -> None:
    client.get(URL, HTTP_X_API_KEY=valid_key.raw)
    forged = f"{valid_key.prefix}.{'x' * 32}"
    response = client.get(URL, HTTP_X_API_KEY=forged)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert _counter_value(valid_key.key) == 1


def test_a_revoke_by_another_process_is_refused_at_once(
    client: Client, world, valid_key, round_trips
) -> None:
    for _ in range(2):
        assert client.get(URL, HTTP_X_API_KEY=valid_key.raw).status_code == 200
    # What another process's revoke leaves behind: the row changed and a new version
    # token; this process still remembers having verified the key.
    APIKey.objects.filter(pk=valid_key.key.pk).update(revoked=True)
    keys._bump_version(valid_key.prefix)
    assert keys.verified_here(valid_key.raw) is not None

    response, trips = _trips(round_trips, lambda: client.get(URL, HTTP_X_API_KEY=valid_key.raw))
    assert response.status_code == 401
    assert trips >= 2  # the fast round trip, then the view's own lookup


def test_an_expired_key_is_refused(client: Client, world, valid_key) -> None:
    assert client.get(URL, HTTP_X_API_KEY=valid_key.raw).status_code == 200
    from datetime import timedelta

    from django.utils import timezone

    key = valid_key.key
    key.expiry_date = timezone.now() - timedelta(seconds=1)
    key.save()
    assert client.get(URL, HTTP_X_API_KEY=valid_key.raw).status_code == 401


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ({"date": "2026-13-01"}, {}, 400),  # invalid date: the view's 400
        ({"date": LAST.isoformat(), "x": "1"}, {}, 200),  # other parameters: the view
        ({"format": "api"}, {}, 404),  # a renderer chosen by parameter (staff only)
        ({}, {"HTTP_ACCEPT": "text/html"}, 200),  # a browser
        ({}, {"HTTP_ACCEPT": "application/xml"}, 200),  # DRF's negotiation decides
    ],
)
def test_unusual_requests_go_to_the_view(
    api: Client, world, monkeypatch: pytest.MonkeyPatch, query, headers, status
) -> None:
    api.get(URL)
    served = []
    serve = fastpath.serve
    monkeypatch.setattr(fastpath, "serve", lambda *a: served.append(serve(*a)) or served[-1])
    response = api.get(URL, query, **headers)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert served == [None]


def test_a_publish_is_seen_at_once(api: Client, world) -> None:
    before = api.get(URL).json()
    api.get(URL)
    caching.clear()  # what a publish does: a new generation
    entry_key = caching.fair_price_key(MEW, None)
    caches["default"].set(entry_key, (-1, {**before, "fair_price": "0.00"}))
    assert api.get(URL).json() == before


def test_if_redis_fails_the_view_answers_and_the_fast_path_waits(
    api: Client, world, monkeypatch: pytest.MonkeyPatch, round_trips
) -> None:
    api.get(URL)

    def broken(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise redis.exceptions.ConnectionError("Redis went away")

    with monkeypatch.context() as patch:
        patch.setattr(redis.connection.AbstractConnection, "send_packed_command", broken)
        response = api.get(URL)  # the view fails open and reads the database
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response
    # Back-off: for a few seconds the view answers without trying the fast path first.
    served = []
    serve = fastpath.serve
    monkeypatch.setattr(fastpath, "serve", lambda *a: served.append(serve(*a)) or served[-1])
    assert api.get(URL).status_code == 200
    assert served == [None]


def test_after_an_error_reply_the_cache_connection_is_sound(world, valid_key) -> None:
    """An error mid-way (here INCR of a non-number) leaves no connection on the counters'
    DB nor with unread replies: the next cache reads get their own answers from DB 1."""
    route = fastpath._route()
    assert route is not None
    counter = ratelimit.counter_for("read", ratelimit.key_client(valid_key.prefix), "5/m")
    where = route.client.connection_pool.connection_kwargs
    raw_counters = redis.Redis(host=where["host"], port=where["port"], db=route.ratelimit_db)
    raw_counters.set(route.counter_key(counter.key), "not a number")  # INCR will fail
    caches["default"].set("fastpath-probe", "probe")
    try:
        assert fastpath._round_trip(route, ["a", "b", "c"], counter) is None
        assert fastpath._state["down_until"] > 0
        fastpath.reset()
        assert caches["default"].get("fastpath-probe") == "probe"
        assert caches["default"].get_many(["fastpath-probe", "nothing"]) == {
            "fastpath-probe": "probe"
        }
    finally:
        raw_counters.delete(route.counter_key(counter.key))
        caches["default"].delete("fastpath-probe")


def test_no_route_without_redis_on_one_server(settings) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {**settings.CACHES["ratelimit"], "LOCATION": "redis://127.0.0.1:6380/2"},
    }
    assert fastpath._route() is None
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "ratelimit": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    assert fastpath._route() is None


def test_route_uses_the_caches_databases(settings) -> None:
    route = fastpath._route()
    assert route is not None
    assert (route.cache_db, route.ratelimit_db) == (1, 2)


def test_a_connection_closed_by_the_server_is_replaced(api: Client, world, monkeypatch) -> None:
    api.get(URL)
    assert api.get(URL).status_code == 200  # served fast: this thread has its connection
    connection = fastpath._local.connection
    connection.send_command("CLIENT", "ID")
    client_id = connection.read_response()
    killer = redis.Redis(host=connection.host, port=connection.port)
    assert killer.client_kill_filter(_id=client_id) == 1
    monkeypatch.setattr(fastpath, "IDLE_CHECK_SECONDS", 0.0)

    served = []
    serve = fastpath.serve
    monkeypatch.setattr(fastpath, "serve", lambda *a: served.append(serve(*a)) or served[-1])
    assert api.get(URL).status_code == 200
    assert served[0] is not None
    assert fastpath._state["down_until"] == 0.0


def test_the_fast_path_knows_the_url_from_the_url_conf() -> None:
    from django.urls import reverse

    assert fastpath._fair_price_card(reverse("card-fair-price", args=[MEW])) == MEW
    for other in (
        f"/api/v1/cards/{MEW}/fair-price",  # no trailing slash: CommonMiddleware's business
        f"/api/v1/cards/{MEW}/prices/",
        "/api/v1/cards/a.b/fair-price/",
        "/api/v1/cards/../fair-price/",
        f"/api/v1/cards/{MEW}/fair-price/extra/",
    ):
        assert fastpath._fair_price_card(other) is None, other


def test_a_host_not_allowed_is_refused_before_the_fast_path(api: Client, world, settings) -> None:
    api.get(URL)
    settings.ALLOWED_HOSTS = ["api.example.org"]
    response = api.get(URL, HTTP_HOST="evil.example.net")
    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request."}
