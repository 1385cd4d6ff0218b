"""collect_prices end to end: real HTTP against a local server shaped like the live API."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from pytest_httpserver import HTTPServer

from pokewatch_site.errors import InvalidInput, SourceError
from prices.collection import collect_prices
from prices.ingestion import upsert_prices
from prices.models import PricePoint
from prices.sources.base import PriceRow

END = date(2026, 8, 10)


def card_payload(tcgplayer_id: int, market: float, history: dict[str, float]) -> dict:
    return {
        "data": [
            {
                "tcgPlayerId": str(tcgplayer_id),
                "name": f"Card {tcgplayer_id}",
                "prices": {"market": market},
                "priceHistory": history,
            }
        ]
    }


@pytest.fixture
def tracker(httpserver: HTTPServer, make_card):
    make_card(card_id="mew", tcgplayer_id=101)
    make_card(card_id="zapdos", tcgplayer_id=102)
    with override_settings(
        POKEMON_PRICE_TRACKER_API_KEY="test-key",
        POKEMON_PRICE_TRACKER_BASE_URL=httpserver.url_for("/api/v2"),
        POKEMON_PRICE_TRACKER_MAX_RETRIES=0,
    ):
        yield httpserver


def serve(httpserver: HTTPServer, tcgplayer_id: int, payload: dict, status: int = 200) -> None:
    httpserver.expect_request(
        "/api/v2/cards",
        query_string={"tcgPlayerId": str(tcgplayer_id), "includeHistory": "true", "days": "3"},
        headers={"Authorization": "Bearer test-key"},
    ).respond_with_json(payload, status=status)


def test_collecting_twice_creates_no_duplicates(tracker: HTTPServer) -> None:
    history = {"2026-08-08": 10.0, "2026-08-09": 11.0}
    serve(tracker, 101, card_payload(101, 12.0, history))
    serve(tracker, 102, card_payload(102, 5.5, {"2026-08-09": 5.0}))

    first = collect_prices("pokemonpricetracker", end=END, days=3)
    second = collect_prices("pokemonpricetracker", end=END, days=3)

    assert (first.created, second.created, second.unchanged) == (5, 0, 5)
    assert PricePoint.objects.count() == 5
    latest = PricePoint.objects.get(card__card_id="mew", date=END)
    assert (latest.market_price, latest.source) == (Decimal("12.00"), "pokemonpricetracker")


def test_if_the_source_fails_half_way_then_nothing_is_written(tracker: HTTPServer) -> None:
    serve(tracker, 101, card_payload(101, 12.0, {}))
    serve(tracker, 102, {"detail": "boom"}, status=500)
    with pytest.raises(SourceError):
        collect_prices("pokemonpricetracker", end=END, days=3)
    assert PricePoint.objects.count() == 0


def test_if_a_card_is_unknown_to_the_source_then_it_is_reported_skipped(
    tracker: HTTPServer,
) -> None:
    serve(tracker, 101, card_payload(101, 12.0, {}))
    serve(tracker, 102, {"error": "not found"}, status=404)
    result = collect_prices("pokemonpricetracker", end=END, days=3)
    assert result.skipped_cards == ["zapdos"]
    assert PricePoint.objects.count() == 1


def test_simulated_recollection_of_a_day_creates_no_duplicates(make_card) -> None:
    make_card(card_id="sim-a", category="grail")
    first = collect_prices("simulated", end=END, days=10)
    again = collect_prices("simulated", end=END, days=1)
    assert again.created == 0
    assert again.unchanged == again.received == 1
    assert PricePoint.objects.count() == first.created


def test_unknown_source_is_refused(db) -> None:
    with pytest.raises(InvalidInput, match="unknown price source"):
        collect_prices("ebay", end=END)


def test_the_simulator_cannot_change_a_real_cards_history(make_card, make_prices) -> None:
    zard = make_card(card_id="tcgplayer-517045-holofoil", category="grail")
    make_prices(zard, [370.16, 371.0, 372.5], start=END - timedelta(days=2), source="tcgcsv")
    before = list(PricePoint.objects.order_by("date").values_list("date", "market_price"))

    result = collect_prices("simulated", end=END, days=30, extra_cards=3)

    assert (
        list(
            PricePoint.objects.filter(card=zard)
            .order_by("date")
            .values_list("date", "market_price")
        )
        == before
    )
    assert PricePoint.objects.filter(card=zard, source="simulated").count() == 0
    assert result.cards_created == 3 and result.created > 60  # its own sim- cards only
    assert set(
        PricePoint.objects.filter(source="simulated").values_list("card__card_id", flat=True)
    ) == {"sim-000001", "sim-000002", "sim-000003"}


def test_simulated_rows_for_a_real_card_are_refused_by_ingestion(make_card) -> None:
    make_card(card_id="tcgplayer-517045-holofoil")
    rows = [PriceRow("tcgplayer-517045-holofoil", END, Decimal("8.28"))]
    with pytest.raises(InvalidInput, match="only writes its own sim- cards"):
        upsert_prices(rows, source="simulated")
    assert PricePoint.objects.count() == 0
