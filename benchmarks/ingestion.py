"""Ingestion throughput: simulate N cards x D days and upsert them three times.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m benchmarks.ingestion --cards 1400 --days 730

Runs in a scratch database (``pokewatch_bench``) that is dropped afterwards. Reports rows/s
for the first load (all inserts), a re-load of the same rows (all unchanged) and a load of
different prices for the same keys (all updates).
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

from benchmarks._db import peak_rss_mb, scratch_database, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=1400)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 6, 30))
    args = parser.parse_args()
    setup_django()

    from prices.ingestion import upsert_prices
    from prices.sources.simulated import SimulatedSource

    with scratch_database("pokewatch_bench") as where:
        print(f"database: {where}; python {platform.python_version()}; {platform.machine()}")
        started = time.perf_counter()
        batch = SimulatedSource(seed=1, extra_cards=args.cards).fetch(
            [], end=args.end, days=args.days
        )
        simulated = time.perf_counter() - started
        rows = batch.rows
        print(f"simulated {len(rows):,} rows for {args.cards:,} cards in {simulated:.1f} s")
        changed = SimulatedSource(seed=2, extra_cards=args.cards).fetch(
            [], end=args.end, days=args.days
        )
        # Same keys as the first load, new prices: every row is an update.
        keys = {(r.card_id, r.date) for r in rows}
        updates = [r for r in changed.rows if (r.card_id, r.date) in keys]

        for label, data, new_cards in (
            ("insert", rows, batch.new_cards),
            ("unchanged", rows, ()),
            ("update", updates, ()),
        ):
            started = time.perf_counter()
            result = upsert_prices(data, source="bench", new_cards=new_cards)
            seconds = time.perf_counter() - started
            print(
                f"{label:>9}: {len(data):>9,} rows in {seconds:6.1f} s = "
                f"{len(data) / seconds:>9,.0f} rows/s  "
                f"(created {result.created:,}, updated {result.updated:,}, "
                f"unchanged {result.unchanged:,})"
            )
        print(f"peak RSS {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
