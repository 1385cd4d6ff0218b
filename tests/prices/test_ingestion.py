from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from pokewatch_site.errors import InvalidInput
from prices import ingestion
from prices.ingestion import upsert_prices
from prices.models import Card, PricePoint
from prices.signals import prices_ingested
from prices.sources.base import CardInfo, PriceRow


def rows_for(card_id: str, prices: list[str], start: date = date(2026, 3, 1)) -> list[PriceRow]:
    return [PriceRow(card_id, start + timedelta(days=i), Decimal(p)) for i, p in enumerate(prices)]


@pytest.fixture(params=["native", "generic"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test through the database's native path and through the generic one."""
    if request.param == "generic":
        monkeypatch.setattr(ingestion, "_upsert_postgresql", ingestion._upsert_generic)
    return request.param


def test_upsert_creates_then_is_idempotent(make_card, write_path) -> None:
    make_card(card_id="a")
    rows = rows_for("a", ["1.00", "2.00", "3.00"])

    first = upsert_prices(rows, source="s")
    second = upsert_prices(rows, source="s")

    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 3)
    assert PricePoint.objects.count() == 3


def test_upsert_updates_changed_prices_in_place(make_card, write_path) -> None:
    make_card(card_id="a")
    upsert_prices(rows_for("a", ["1.00", "2.00"]), source="s")

    result = upsert_prices(rows_for("a", ["1.00", "2.50", "4.00"]), source="s")

    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    assert [p.market_price for p in PricePoint.objects.order_by("date")] == [
        Decimal("1.00"),
        Decimal("2.50"),
        Decimal("4.00"),
    ]


def test_same_day_from_another_source_is_a_separate_row(make_card, write_path) -> None:
    make_card(card_id="a")
    upsert_prices(rows_for("a", ["1.00"]), source="one")
    upsert_prices(rows_for("a", ["1.10"]), source="two")
    assert PricePoint.objects.count() == 2


def test_if_a_card_is_unknown_then_nothing_is_written(make_card, write_path) -> None:
    make_card(card_id="a")
    rows = rows_for("a", ["1.00"]) + rows_for("ghost", ["2.00"])
    with pytest.raises(InvalidInput, match="unknown card id.*ghost"):
        upsert_prices(rows, source="s")
    assert PricePoint.objects.count() == 0


def test_if_a_price_is_not_positive_then_nothing_is_written(make_card, write_path) -> None:
    make_card(card_id="a")
    with pytest.raises(InvalidInput, match="must be positive"):
        upsert_prices(rows_for("a", ["1.00", "0.00"]), source="s")
    assert PricePoint.objects.count() == 0


def test_if_rows_conflict_then_error_names_card_and_day(make_card, write_path) -> None:
    make_card(card_id="a")
    rows = rows_for("a", ["1.00"]) + rows_for("a", ["1.50"])
    with pytest.raises(InvalidInput, match="conflicting prices for a on 2026-03-01"):
        upsert_prices(rows, source="s")


def test_identical_duplicate_rows_are_merged(make_card, write_path) -> None:
    make_card(card_id="a")
    result = upsert_prices(rows_for("a", ["1.00"]) * 2, source="s")
    assert result.received == 1
    assert PricePoint.objects.count() == 1


def test_new_cards_are_created_with_their_prices(db, write_path) -> None:
    info = CardInfo(card_id="fresh", name="Fresh card", set_name="Set", category="sealed")
    result = upsert_prices(rows_for("fresh", ["9.99"]), source="s", new_cards=[info])
    assert result.cards_created == 1
    assert Card.objects.get(card_id="fresh").category == "sealed"
    assert PricePoint.objects.filter(card__card_id="fresh").count() == 1


def test_if_writing_fails_half_way_then_nothing_is_kept(
    make_card, write_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_card(card_id="a")
    upsert_prices(rows_for("a", ["1.00"]), source="s")
    info = CardInfo(card_id="new", name="New")

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    # The card is created first; the price write then fails: the card must go too.
    target = "_upsert_postgresql" if connection.vendor == "postgresql" else "_upsert_generic"
    monkeypatch.setattr(ingestion, target, explode)
    with pytest.raises(RuntimeError):
        upsert_prices(rows_for("a", ["5.00", "6.00"]), source="s", new_cards=[info])
    assert not Card.objects.filter(card_id="new").exists()
    assert list(PricePoint.objects.values_list("market_price", flat=True)) == [Decimal("1.00")]


@pytest.mark.postgres
def test_postgresql_uses_copy_and_on_conflict(make_card, django_assert_max_num_queries) -> None:
    assert connection.vendor == "postgresql"
    make_card(card_id="a")
    rows = rows_for("a", [f"{i + 1}.00" for i in range(500)])
    # card lookup, temp table, COPY, merge, drop, savepoints: a constant number of statements
    with django_assert_max_num_queries(12):
        result = upsert_prices(rows, source="s")
    assert result.created == 500


@pytest.mark.postgres
def test_a_catalog_of_new_cards_is_copied_in_with_awkward_names_intact(
    db, django_assert_max_num_queries
) -> None:
    infos = [
        CardInfo(
            card_id=f"tcgplayer-{n}-holofoil",
            name=f"Card {n}\twith a tab, a \\ backslash\nand a newline",
            set_name="Set é",
            tcgplayer_id=n,
            printing="Holofoil",
            url=f"https://www.tcgplayer.com/product/{n}",
        )
        for n in range(1, 1502)
    ]
    rows = [PriceRow(i.card_id, date(2026, 1, 1), Decimal("1.00")) for i in infos]
    with django_assert_max_num_queries(20):  # COPY, not a statement per thousand cards
        result = upsert_prices(rows, source="tcgcsv", new_cards=infos)
    assert result.cards_created == 1501 and result.created == 1501
    card = Card.objects.get(card_id="tcgplayer-7-holofoil")
    assert card.name == "Card 7\twith a tab, a \\ backslash\nand a newline"
    assert (card.set_name, card.tcgplayer_id, card.printing) == ("Set é", 7, "Holofoil")
    assert (card.tags, card.active, card.category, card.language) == ([], True, "other", "en")
    assert card.created_at is not None and card.latest_price_date == date(2026, 1, 1)


def test_progress_is_reported_for_large_batches(make_card, write_path) -> None:
    make_card(card_id="a")
    start = date(2000, 1, 1)
    rows = rows_for("a", ["1.00"] * 150_001, start=start)
    messages: list[str] = []
    upsert_prices(rows, source="s", progress=messages.append)
    assert any(re.search(r"(copied|written) [\d,]+ / 150,001 rows", m) for m in messages)


@pytest.mark.postgres
def test_on_postgresql_the_prices_have_a_brin_index_on_date(db) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'pricepoint_date_brin'")
        (definition,) = cursor.fetchone()
    assert definition.endswith("ON public.prices_pricepoint USING brin (date)")


# --- the announcement of new prices (prices.signals.prices_ingested) ---------------------


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the receivers a test connects (pipelines' scorer is left out meanwhile)."""
    monkeypatch.setattr(prices_ingested, "receivers", [])
    monkeypatch.setattr(prices_ingested, "sender_receivers_cache", {})


def test_ingestion_announces_new_prices_and_sums_what_receivers_scored(
    make_card, receivers
) -> None:
    heard: list[date] = []

    def scorer(sender: object, first_date: date, **kwargs: object) -> int:
        heard.append(first_date)
        return 2

    def no_champion(sender: object, first_date: date, **kwargs: object) -> None:
        return None

    prices_ingested.connect(scorer)
    prices_ingested.connect(no_champion)
    make_card(card_id="a")
    result = ingestion.score_new_prices(upsert_prices(rows_for("a", ["1", "2"]), source="s"))
    assert (heard, result.scored) == ([date(2026, 3, 1)], 2)
    assert ingestion.score_from(None) is None and heard == [date(2026, 3, 1)]  # nothing new


def test_without_a_receiver_nothing_is_scored(make_card, receivers) -> None:
    make_card(card_id="a")
    result = ingestion.score_new_prices(upsert_prices(rows_for("a", ["1"]), source="s"))
    assert result.scored is None and "new predictions" not in result.summary()


def test_if_a_receiver_fails_then_the_import_stays_and_the_failure_is_logged(
    make_card, receivers, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: object, first_date: date, **kwargs: object) -> int:
        raise RuntimeError("model store unreachable")

    prices_ingested.connect(broken)
    make_card(card_id="a")
    result = ingestion.score_new_prices(upsert_prices(rows_for("a", ["1"]), source="s"))
    assert result.scored is None
    assert PricePoint.objects.count() == 1
    assert "model store unreachable" in caplog.text
