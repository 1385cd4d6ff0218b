"""``/metrics``: who may read it, and the application's event metrics moving when their
event happens (state metrics: tests/prices/test_observability.py and
tests/pipelines/test_observability.py; several gunicorn workers:
test_metrics_multiprocess.py)."""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError
from django.test import Client

from pokewatch_site import metrics
from tests.support.metrics import TOKEN, parse, scrape, value

FAIR_PRICE = "/api/v1/cards/sv2a-151-mew-ex-205/fair-price/"


# --- who may read it -----------------------------------------------------------------------


def test_with_a_token_set_a_scrape_without_it_is_refused_with_json(db, metrics_token) -> None:
    client = Client()  # loopback, which does not matter once a token is set
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": TOKEN}):
        response = client.get("/metrics", **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert "POKEWATCH_METRICS_TOKEN" in response.json()["detail"]
        assert TOKEN.encode() not in response.content


def test_with_the_token_the_page_is_prometheus_text(db, metrics_token) -> None:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"].startswith("max-age=0")
    samples = parse(response.content)
    assert ("pokewatch_metrics_source_up", frozenset({("source", "database")})) in samples


def test_openmetrics_is_served_when_the_scraper_asks(db, metrics_token) -> None:
    response = Client().get(
        "/metrics",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        HTTP_ACCEPT="application/openmetrics-text; version=1.0.0",
    )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_without_a_token_only_loopback_clients_are_answered(db, settings) -> None:
    settings.POKEWATCH_METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    remote = Client(REMOTE_ADDR="10.0.0.7").get("/metrics")
    assert remote.status_code == 403
    assert "loopback" in remote.json()["detail"]
    assert Client(REMOTE_ADDR="not-an-address").get("/metrics").status_code == 403


def test_plain_http_scrapes_are_not_redirected(db, metrics_token, settings) -> None:
    """Prometheus scrapes over the private network; an HTTPS redirect would fail it."""
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert Client().get("/admin/login/").status_code == 301  # the rest is still redirected


def test_only_reads_are_allowed(db, metrics_token) -> None:
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


# --- event metrics move with their events --------------------------------------------------


def test_a_cache_hit_and_a_miss_move_their_counters(api: Client, world, metrics_token) -> None:
    before = scrape(api)
    assert api.get(FAIR_PRICE).status_code == 200  # a miss: read from the database
    middle = scrape(api)
    assert api.get(FAIR_PRICE).status_code == 200  # a hit
    after = scrape(api)
    hits, misses = (
        "pokewatch_prediction_cache_hits_total",
        "pokewatch_prediction_cache_misses_total",
    )
    assert value(middle, misses) - value(before, misses) == 1
    assert value(middle, hits) == value(before, hits)
    assert value(after, hits) - value(middle, hits) == 1
    assert value(after, misses) == value(middle, misses)


def test_a_429_moves_the_refusals_of_its_group(client: Client, world, make_key, metrics_token):
    slow = make_key("slow", rate="1/m")
    before = scrape(client)
    codes = [client.get(FAIR_PRICE, HTTP_X_API_KEY=slow.raw).status_code for _ in range(3)]
    after = scrape(client)
    assert codes == [200, 429, 429]
    name = "pokewatch_ratelimit_refusals_total"
    assert value(after, name, group="read") - value(before, name, group="read") == 2
    assert value(after, name, group="batch") == value(before, name, group="batch")


def test_each_refused_key_counts_under_its_reason(
    client: Client, world, valid_key, revoked_key, expired_key, missing_raw_key, metrics_token
) -> None:
    sent = {
        "missing": {},
        "malformed": {"HTTP_X_API_KEY": "no-dot-in-this-key"},
        "unknown": {"HTTP_X_API_KEY": missing_raw_key},
        "revoked": {"HTTP_X_API_KEY": revoked_key.raw},
        "expired": {"HTTP_X_API_KEY": expired_key.raw},
    }
    # The right prefix with a wrong secret says nothing about the key: "unknown".
    wrong_secret = {"HTTP_X_API_KEY": f"{revoked_key.prefix}.{'x' * 32}"}
    name = "pokewatch_auth_failures_total"
    for reason, headers in sent.items():
        before = scrape(client)
        assert client.get(FAIR_PRICE, **headers).status_code == 401
        after = scrape(client)
        moved = {r: value(after, name, reason=r) - value(before, name, reason=r) for r in sent}
        assert moved == {r: (1 if r == reason else 0) for r in sent}, reason
    before = scrape(client)
    assert client.get(FAIR_PRICE, **wrong_secret).status_code == 401
    assert (
        value(scrape(client), name, reason="unknown") - value(before, name, reason="unknown") == 1
    )
    # A good key is no failure.
    before = scrape(client)
    assert client.get(FAIR_PRICE, HTTP_X_API_KEY=valid_key.raw).status_code == 200
    after = scrape(client)
    assert sum(value(after, name, reason=r) - value(before, name, reason=r) for r in sent) == 0


def test_every_reason_and_group_is_exported_from_zero(db, metrics_token, settings) -> None:
    samples = scrape(Client())
    for reason in metrics.AUTH_FAILURE_REASONS:
        assert ("pokewatch_auth_failures_total", frozenset({("reason", reason)})) in samples
    for group in settings.POKEWATCH_RATES:
        assert ("pokewatch_ratelimit_refusals_total", frozenset({("group", group)})) in samples


def test_requests_are_counted_by_django_prometheus(api: Client, world, metrics_token) -> None:
    name = "django_http_responses_total_by_status_total"
    before = scrape(api)
    api.get(FAIR_PRICE)
    api.get("/api/v1/cards/no-such-card/fair-price/")
    after = scrape(api)
    assert value(after, name, status="200") - value(before, name, status="200") >= 1
    assert value(after, name, status="404") - value(before, name, status="404") == 1
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert any(n == latency and dict(labels).get("method") == "GET" for n, labels in after), (
        "no latency histogram"
    )


# --- a source that is down leaves the rest of the page ------------------------------------


class _Failing:
    def collect(self):  # type: ignore[no-untyped-def]
        raise DatabaseError("canceling statement due to statement timeout")


def test_if_the_database_fails_the_page_still_answers_and_says_so(
    db, metrics_token, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(metrics, "_collectors", [("database", _Failing()), *metrics._collectors])
    samples = scrape(Client())
    assert value(samples, "pokewatch_metrics_source_up", source="database") == 0
    assert value(samples, "pokewatch_metrics_source_up", source="broker") == 1
    # Nothing else of the database was asked once it failed; events are still there.
    assert ("pokewatch_training_consecutive_failures", frozenset()) not in samples
    assert ("pokewatch_prediction_cache_hits_total", frozenset()) in samples
    assert any("_Failing skipped" in r.getMessage() for r in caplog.records)


@pytest.mark.redis
def test_if_the_broker_is_down_or_hangs_the_page_answers_in_time(
    db, metrics_token, broker_at, unreachable_redis
) -> None:
    broker_at(f"{unreachable_redis}/0")
    for _ in range(2):
        started = time.monotonic()
        samples = scrape(Client())
        assert time.monotonic() - started < 2.0
        assert value(samples, "pokewatch_metrics_source_up", source="broker") == 0
        assert value(samples, "pokewatch_metrics_source_up", source="database") == 1
        assert not any(name == "pokewatch_celery_queue_length" for name, _ in samples)


@pytest.mark.redis
def test_queue_length_counts_messages_waiting_on_the_broker(db, metrics_token, settings) -> None:
    from pokewatch_site.health import broker_connection

    settings.POKEWATCH_SHARD_QUEUE = queue = f"pokewatch-test-metrics-{time.monotonic_ns()}"
    name = "pokewatch_celery_queue_length"
    assert value(scrape(Client()), name, queue=queue) == 0  # never declared: 0, no error
    with broker_connection() as conn:
        waiting = conn.SimpleQueue(queue)
        try:
            for n in range(3):
                waiting.put({"n": n})
            assert value(scrape(Client()), name, queue=queue) == 3
        finally:
            waiting.clear()
            waiting.close()
    assert value(scrape(Client()), name, queue=queue) == 0
