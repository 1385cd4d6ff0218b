"""The Pokemon Price Tracker client against a local HTTP server (no network, no database)."""

from __future__ import annotations

import logging
import socket
import time
from datetime import date
from decimal import Decimal

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pokewatch_site.errors import SourceError, SourceUnavailable
from prices.sources.base import PriceRow, SourceCard
from prices.sources.pokemonpricetracker import PokemonPriceTrackerSource

KEY = "test-key-123"
END = date(2026, 3, 10)
BEARER = {"Authorization": f"Bearer {KEY}"}


def source(httpserver: HTTPServer, **kwargs: object) -> PokemonPriceTrackerSource:
    options: dict = {"base_url": httpserver.url_for("/api/v2"), "timeout": 2.0}
    options.update({"max_retries": 3, "backoff_factor": 0.0, "backoff_max": 0.0})
    options.update(kwargs)
    return PokemonPriceTrackerSource(KEY, **options)


def query(days: int = 7, **params: str) -> dict[str, str]:
    return {**params, "includeHistory": "true", "days": str(days)}


def item(tcg: object = "123", **fields: object) -> dict:
    return {"tcgPlayerId": tcg, "name": "Charizard ex", **fields}


def test_fetch_by_tcgplayer_id_sends_bearer_and_keeps_the_window(httpserver: HTTPServer) -> None:
    history = {
        "2026-03-01": 9.0,  # before the 7-day window (starts 03-04)
        "2026-03-04": 10.0,
        "2026-03-05T00:00:00.000Z": {"market": 10.555},
        "2026-03-06": None,
        "2026-03-07": 0,
        "2026-03-08": -3,
        "2026-03-09": {"market": 11},
        "2026-03-10": 11.5,  # replaced by prices.market
        "2026-03-11": 99.0,  # after the end
    }
    body = {"data": item(123, prices={"market": 12.344}, priceHistory=history)}
    httpserver.expect_request(
        "/api/v2/cards", method="GET", headers=BEARER, query_string=query(tcgPlayerId="123")
    ).respond_with_json(body)

    batch = source(httpserver).fetch([SourceCard("zard", tcgplayer_id=123)], end=END, days=7)

    assert batch.rows == [
        PriceRow("zard", date(2026, 3, 4), Decimal("10.00")),
        PriceRow("zard", date(2026, 3, 5), Decimal("10.56")),
        PriceRow("zard", date(2026, 3, 9), Decimal("11.00")),
        PriceRow("zard", date(2026, 3, 10), Decimal("12.34")),
    ]
    assert batch.skipped == []
    assert batch.new_cards == []
    assert "test-key" not in httpserver.log[0][0].url


def test_fetch_by_set_matches_by_id_or_tcgplayer_id_and_skips_the_rest(
    httpserver: HTTPServer,
) -> None:
    body = {
        "data": [
            item("500", id="pt-a", prices={"market": 3}, priceHistory={"2026-03-09": 2.5}),
            item(501, id="pt-b", prices={"market": 4.2}),
            item(502, id="pt-c", prices={"market": "not looked at"}),
        ],
        "metadata": {"total": 3},
    }
    httpserver.expect_request(
        "/api/v2/cards", headers=BEARER, query_string=query(days=2, setId="sv1")
    ).respond_with_json(body)
    cards = [
        SourceCard("a", pricetracker_id="pt-a", set_code="sv1"),
        SourceCard("b", pricetracker_id="501", set_code="sv1"),
        SourceCard("gone", pricetracker_id="pt-zzz", set_code="sv1"),
        SourceCard("no-ids", set_code="sv1"),
        SourceCard("nothing"),
    ]

    batch = source(httpserver).fetch(cards, end=END, days=2)

    assert batch.rows == [
        PriceRow("a", date(2026, 3, 9), Decimal("2.50")),
        PriceRow("a", END, Decimal("3.00")),
        PriceRow("b", END, Decimal("4.20")),
    ]
    assert sorted(batch.skipped) == ["gone", "no-ids", "nothing"]
    assert len(httpserver.log) == 1


def test_retries_429_and_503_then_succeeds(httpserver: HTTPServer) -> None:
    uri, qs = "/api/v2/cards", query(tcgPlayerId="123")
    httpserver.expect_oneshot_request(uri, query_string=qs).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_oneshot_request(uri, query_string=qs).respond_with_data("busy", status=503)
    httpserver.expect_oneshot_request(uri, query_string=qs).respond_with_json(
        {"data": item(prices={"market": 5})}
    )

    batch = source(httpserver).fetch([SourceCard("c", tcgplayer_id=123)], end=END, days=7)

    assert batch.rows == [PriceRow("c", END, Decimal("5.00"))]
    assert [response.status_code for _, response in httpserver.log] == [429, 503, 200]


def test_exhausted_retries_raise_source_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v2/cards").respond_with_data("down", status=503)

    with pytest.raises(SourceUnavailable, match="HTTP 503") as info:
        source(httpserver, max_retries=2).fetch([SourceCard("c", tcgplayer_id=1)], end=END, days=1)

    assert info.value.transient is True
    assert len(httpserver.log) == 3


def test_timeout_raises_source_unavailable(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/api/v2/cards").respond_with_handler(slow)

    for retries in (0, 1):  # requests reports a read timeout differently after a retry
        with pytest.raises(SourceUnavailable, match="timed out"):
            source(httpserver, timeout=0.05, max_retries=retries).fetch(
                [SourceCard("c", tcgplayer_id=1)], end=END, days=1
            )


def test_connection_refused_raises_source_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request
    client = PokemonPriceTrackerSource(
        KEY, base_url=f"http://127.0.0.1:{port}/api/v2", max_retries=1, backoff_factor=0
    )

    with pytest.raises(SourceUnavailable, match="connection failed"):
        client.fetch([SourceCard("c", tcgplayer_id=1)], end=END, days=1)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_raises_a_clear_source_error(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/api/v2/cards").respond_with_json({"error": "no"}, status=status)

    with pytest.raises(SourceError, match=f"rejected the API key \\(HTTP {status}\\)") as info:
        source(httpserver).fetch([SourceCard("c", tcgplayer_id=1)], end=END, days=1)

    assert info.value.transient is False
    assert KEY not in info.value.detail


def test_unknown_tcgplayer_id_is_skipped_not_fatal(httpserver: HTTPServer) -> None:
    answers = {
        "1": ({"error": "Card not found"}, 404),
        "2": ({"data": [item("2", prices={"market": 1.5})]}, 200),
        "3": ({"data": []}, 200),
    }
    for tcg, (body, status) in answers.items():
        httpserver.expect_request(
            "/api/v2/cards", query_string=query(tcgPlayerId=tcg)
        ).respond_with_json(body, status=status)
    cards = [SourceCard(f"c{n}", tcgplayer_id=n) for n in (1, 2, 3)]

    batch = source(httpserver).fetch(cards, end=END, days=7)

    assert batch.rows == [PriceRow("c2", END, Decimal("1.50"))]
    assert batch.skipped == ["c1", "c3"]


def test_404_for_a_set_or_the_endpoint_raises_source_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v2/cards").respond_with_data("Not Found", status=404)

    with pytest.raises(SourceError, match="HTTP 404"):
        source(httpserver).fetch(
            [SourceCard("a", pricetracker_id="x", set_code="sv1")], end=END, days=1
        )
    with pytest.raises(SourceError, match="POKEMON_PRICE_TRACKER_BASE_URL"):
        source(httpserver).fetch([SourceCard("b", tcgplayer_id=9)], end=END, days=1)


def test_malformed_json_raises_source_error_naming_the_card(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v2/cards").respond_with_data(
        "<html>oops", content_type="application/json"
    )

    with pytest.raises(SourceError, match="card zard .*not valid JSON"):
        source(httpserver).fetch([SourceCard("zard", tcgplayer_id=1)], end=END, days=1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cards": []}, "no 'data' field"),
        ([1, 2], "no 'data' field"),
        ({"data": "x"}, "'data' must be an object"),
        ({"data": item("1", prices={"market": "abc"})}, "card zard: prices.market must be a num"),
        ({"data": item("1", prices=[1])}, "card zard: 'prices' must be an object"),
        ({"data": item("1", priceHistory=[1])}, "card zard: 'priceHistory' must be an object"),
        ({"data": item("1", priceHistory={"yesterday": 1})}, "card zard: bad date 'yesterday'"),
        ({"data": item("1", priceHistory={"2026-03-10": "1"})}, "priceHistory\\['2026-03-10'\\]"),
    ],
)
def test_wrongly_shaped_body_raises_source_error(
    httpserver: HTTPServer, body: object, message: str
) -> None:
    httpserver.expect_request("/api/v2/cards").respond_with_json(body)

    with pytest.raises(SourceError, match=message) as info:
        source(httpserver).fetch([SourceCard("zard", tcgplayer_id=1)], end=END, days=7)

    assert info.value.transient is False


def test_missing_api_key_raises_source_error_before_any_request(httpserver: HTTPServer) -> None:
    client = PokemonPriceTrackerSource("", base_url=httpserver.url_for("/api/v2"))

    with pytest.raises(SourceError, match="POKEMON_PRICE_TRACKER_API_KEY"):
        client.fetch([SourceCard("c", tcgplayer_id=1)], end=END, days=1)

    assert httpserver.log == []


def test_logs_one_info_line_per_request_without_the_key(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/api/v2/cards").respond_with_json({"data": []})
    caplog.set_level(logging.INFO, logger="prices.sources.pokemonpricetracker")

    source(httpserver).fetch(
        [SourceCard("a", tcgplayer_id=1), SourceCard("b", tcgplayer_id=2)], end=END, days=1
    )

    infos = [r for r in caplog.records if r.name == "prices.sources.pokemonpricetracker"]
    assert len(infos) == 2
    assert "HTTP 200" in infos[0].getMessage()
    assert KEY not in caplog.text


def test_from_settings_reads_the_django_settings() -> None:
    from django.test import override_settings

    with override_settings(
        POKEMON_PRICE_TRACKER_API_KEY="k",
        POKEMON_PRICE_TRACKER_BASE_URL="http://example.invalid/api/v2/",
        POKEMON_PRICE_TRACKER_TIMEOUT=3.5,
        POKEMON_PRICE_TRACKER_MAX_RETRIES=2,
    ):
        client = PokemonPriceTrackerSource.from_settings()

    assert client.api_key == "k"
    assert client.base_url == "http://example.invalid/api/v2"
    assert client.timeout == (3.5, 3.5)
    assert client.session.get_adapter("https://x").max_retries.total == 2
