"""The prices table at the catalog's size: PokeWatch's queries with and without a BRIN index.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m benchmarks.prices_table --cards 42000 --days 730

Fills a scratch database (``pokewatch_bench_prices``, dropped afterwards) the way the daily
collection does: one day of every card after the other (so the table's physical order
follows the date), ``cards x days`` prices. Then times the queries the code makes of it,
first with the unique (card, date, source) index alone, then with the BRIN index on
``date`` that migration 0008 creates on PostgreSQL (dropped before the fill, built after):

- ``recent``: every card's prices of the last two days (the scoring's look for unscored
  prices, the grading of the track record);
- ``card``: one card's whole history (the API's ``prices/``);
- ``shard``: 5,000 cards' whole history (one shard of the pipeline: a range of card ids);
- ``ingest``: one more day of every card through ``prices.ingestion.upsert_prices``.

Each query runs three times; the best time is reported. Index sizes are reported too.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from benchmarks._db import scratch_database, setup_django


def fill(cards: int, days: int, end: date) -> None:
    from django.db import connection

    start = end - timedelta(days=days - 1)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO prices_card (card_id, name, set_code, set_name, number, rarity,
                category, tags, language, printing, image_url, url, pricetracker_id, active,
                created_at, updated_at, latest_price_date)
            SELECT 'sim-' || lpad(i::text, 6, '0'), 'Card ' || i, 'sim', 'Simulated', '',
                '', 'other', '[]'::jsonb, 'en', '', '', '', '', true, now(), now(), %s
            FROM generate_series(1, %s) AS i
            """,
            [end, cards],
        )
        started = time.perf_counter()
        for offset in range(days):
            day = start + timedelta(days=offset)
            cursor.execute(
                """
                INSERT INTO prices_pricepoint (card_id, date, market_price, currency, source,
                    created_at)
                SELECT id, %s, round((5 + random() * 200)::numeric, 2), 'USD', 'tcgcsv', now()
                FROM prices_card ORDER BY id
                """,
                [day],
            )
            if offset % 100 == 99:
                rate = (offset + 1) * cards / (time.perf_counter() - started)
                print(f"  filled {offset + 1} days ({rate:,.0f} rows/s)", flush=True)
        cursor.execute("VACUUM ANALYZE prices_pricepoint")


def best_of(label: str, query: Callable[[], object], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        query()
        times.append(time.perf_counter() - started)
    print(f"  {label:<8} {min(times) * 1000:10.1f} ms")
    return min(times)


def measure(end: date, cards: int, label: str) -> dict[str, float]:
    from django.db import connection, transaction

    from prices.ingestion import upsert_prices
    from prices.sources.base import PriceRow

    def scalar(sql: str, params: list[Any]) -> object:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    ids = [f"sim-{i:06d}" for i in range(1, cards + 1)]
    print(f"{label}:")
    results = {
        "recent": best_of(
            "recent",
            lambda: scalar(
                "SELECT count(*) FROM prices_pricepoint WHERE date >= %s",
                [end - timedelta(days=1)],
            ),
        ),
        "card": best_of(
            "card",
            lambda: scalar(
                "SELECT count(*), max(market_price) FROM prices_pricepoint WHERE card_id = %s",
                [cards // 2],
            ),
        ),
        "shard": best_of(
            "shard",
            lambda: scalar(
                "SELECT count(*), sum(market_price) FROM prices_pricepoint "
                "WHERE card_id BETWEEN %s AND %s",
                [10_001, 15_000],
            ),
        ),
    }
    day = end + timedelta(days=1)
    rows = [PriceRow(card_id, day, Decimal("9.99")) for card_id in ids]

    def ingest() -> None:
        with transaction.atomic():
            upsert_prices(rows, source="tcgcsv")
            transaction.set_rollback(True)  # measure the same new day each round

    results["ingest"] = best_of("ingest", ingest)
    return results


def sizes() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid))
            FROM pg_class c WHERE c.relname LIKE 'prices_pricepoint%%' OR c.relname LIKE
                'pricepoint%%' ORDER BY pg_relation_size(c.oid) DESC
            """
        )
        for name, size in cursor.fetchall():
            print(f"  {name:<48} {size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=42_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 6, 30))
    args = parser.parse_args()
    setup_django()
    from django.db import connection

    with scratch_database("pokewatch_bench_prices") as where:
        print(f"database: {where}; {args.cards:,} cards x {args.days} days")
        with connection.cursor() as cursor:  # migration 0008's index: measured both ways
            cursor.execute("DROP INDEX IF EXISTS pricepoint_date_brin")
        started = time.perf_counter()
        fill(args.cards, args.days, args.end)
        print(f"filled in {time.perf_counter() - started:.0f} s")
        sizes()
        measure(args.end, args.cards, "unique (card, date, source) index only")
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE INDEX pricepoint_date_brin ON prices_pricepoint USING brin (date)"
            )
        print(f"BRIN (date) built in {time.perf_counter() - started:.1f} s")
        sizes()
        measure(args.end, args.cards, "with BRIN (date)")


if __name__ == "__main__":
    main()
