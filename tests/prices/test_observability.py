"""State metrics of the prices side on /metrics: freshness per source, today's signals."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from prices.ingestion import upsert_prices
from prices.models import SourceFreshness
from prices.sources.base import PriceRow
from tests.support.metrics import scrape, value
from tests.support.migrations import migrate

AGE = "pokewatch_newest_price_age_seconds"


def _rows(card_id: str, first: date, prices: list[str]) -> list[PriceRow]:
    return [
        PriceRow(card_id=card_id, date=first + timedelta(days=i), market_price=Decimal(p))
        for i, p in enumerate(prices)
    ]


def test_ingesting_prices_resets_the_age_of_their_source(make_card, metrics_token) -> None:
    card = make_card(card_id="a")
    upsert_prices(_rows(card.card_id, date(2026, 1, 1), ["10", "11"]), source="tcgcsv")
    upsert_prices(_rows(card.card_id, date(2026, 1, 1), ["10"]), source="csv")
    two_days_ago = timezone.now() - timedelta(days=2)
    SourceFreshness.objects.update(last_ingested_at=two_days_ago)
    stale = scrape(Client())
    assert value(stale, AGE, source="tcgcsv") == pytest.approx(2 * 86400, abs=60)
    assert value(stale, AGE, source="csv") == pytest.approx(2 * 86400, abs=60)

    upsert_prices(_rows(card.card_id, date(2026, 1, 3), ["12"]), source="tcgcsv")

    fresh = scrape(Client())
    assert value(fresh, AGE, source="tcgcsv") < 60
    assert value(fresh, AGE, source="csv") == pytest.approx(2 * 86400, abs=60)  # untouched
    assert SourceFreshness.objects.get(source="tcgcsv").newest_date == date(2026, 1, 3)


def test_resending_the_same_prices_is_not_news(make_card, metrics_token) -> None:
    card = make_card(card_id="a")
    rows = _rows(card.card_id, date(2026, 1, 1), ["10", "11"])
    upsert_prices(rows, source="tcgcsv")
    SourceFreshness.objects.update(last_ingested_at=timezone.now() - timedelta(hours=40))
    upsert_prices(rows, source="tcgcsv")  # unchanged: created 0, updated 0
    assert value(scrape(Client()), AGE, source="tcgcsv") > 39 * 3600
    # An older day arriving late does not move the newest day back.
    upsert_prices(_rows(card.card_id, date(2025, 12, 1), ["9"]), source="tcgcsv")
    assert SourceFreshness.objects.get(source="tcgcsv").newest_date == date(2026, 1, 2)


def test_a_failed_import_leaves_freshness_alone(make_card) -> None:
    from pokewatch_site.errors import InvalidInput

    card = make_card(card_id="a")
    with pytest.raises(InvalidInput):
        upsert_prices(
            [
                *_rows(card.card_id, date(2026, 1, 1), ["10"]),
                *_rows("nope", date(2026, 1, 1), ["1"]),
            ],
            source="tcgcsv",
        )
    assert not SourceFreshness.objects.exists()


def test_signals_published_today_are_the_champions_newest_day(world, metrics_token) -> None:
    samples = scrape(Client())
    name = "pokewatch_signals_published_today"
    # tests.support.api's world: one BUY, one SELL, one HOLD on the last day.
    assert [value(samples, name, signal=s) for s in ("BUY", "SELL", "HOLD")] == [1, 1, 1]


def test_with_no_champion_every_signal_is_zero(db, metrics_token) -> None:
    samples = scrape(Client())
    name = "pokewatch_signals_published_today"
    assert [value(samples, name, signal=s) for s in ("BUY", "SELL", "HOLD")] == [0, 0, 0]
    assert not any(n == AGE for n, _ in samples)  # no source yet: no sample, not a 0


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_freshness_from_the_stored_prices() -> None:
    before, after = (
        [("prices", "0009_cache_generation_permissions")],
        [("prices", "0010_source_freshness")],
    )
    apps = migrate(before)
    Card = apps.get_model("prices", "Card")
    PricePoint = apps.get_model("prices", "PricePoint")
    card = Card.objects.create(card_id="a", name="A")
    for day, source in ((1, "csv"), (5, "csv"), (3, "tcgcsv")):
        PricePoint.objects.create(
            card=card, date=date(2026, 1, day), market_price=Decimal("1"), source=source
        )
    try:
        apps = migrate(after)
        rows = apps.get_model("prices", "SourceFreshness").objects.order_by("source")
        assert [(r.source, r.newest_date) for r in rows] == [
            ("csv", date(2026, 1, 5)),
            ("tcgcsv", date(2026, 1, 3)),
        ]
        assert all(timezone.now() - r.last_ingested_at < timedelta(minutes=5) for r in rows)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
