"""tcgcsv ingestion: one day of the whole Pokémon catalog, then a backfill of many days.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m benchmarks.tcgcsv --days 60

A local HTTP server plays tcgcsv.com: every day's archive is one of the two real daily
archives in tests/fixtures/tcgcsv (2025-09-21 and -22, the whole category: 208 sets,
~42,600 rows, ~41,600 priced), alternating, so each backfilled day writes a full day of
the catalog under a new date. The catalog endpoints answer the group ids with synthetic
names and no product metadata. The client downloads into a temporary cache, exactly as
against the real site. Runs in a scratch PostgreSQL database (``pokewatch_bench_tcgcsv``),
dropped afterwards.

Reports: the first day (download, decompression of the category, 41.6k new cards and
prices, committed) and each later day, from archive to committed rows; the backfill's
rate (days/min, prices/s), the process's resident and peak memory every 25 days (with the
median day of those 25, to see whether a growing table slows it) and at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks._db import peak_rss_mb, rss_mb, scratch_database, setup_django

ROOT = Path(__file__).resolve().parent.parent
ARCHIVES = ROOT / "tests" / "fixtures" / "tcgcsv" / "archive" / "tcgplayer"
REAL_DAYS = [date(2025, 9, 21), date(2025, 9, 22)]
REPORT_EVERY = 25  # days between memory and speed lines
_ARCHIVE = re.compile(r"^/archive/tcgplayer/prices-(\d{4}-\d{2}-\d{2})\.ppmd\.7z$")


def serve(group_ids: list[int]) -> ThreadingHTTPServer:
    archives = {d: (ARCHIVES / f"prices-{d.isoformat()}.ppmd.7z").read_bytes() for d in REAL_DAYS}
    groups = json.dumps(
        {
            "success": True,
            "errors": [],
            "results": [
                {"groupId": g, "name": f"Set {g}", "abbreviation": f"S{g}", "categoryId": 3}
                for g in group_ids
            ],
        }
    ).encode()
    empty = json.dumps({"success": True, "errors": [], "results": []}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name for it
            match = _ARCHIVE.match(self.path)
            if match:
                day = date.fromisoformat(match.group(1))
                body = archives[REAL_DAYS[day.toordinal() % 2]]
            elif self.path == "/tcgplayer/3/groups":
                body = groups
            elif self.path.endswith("/products"):
                body = empty
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=60, help="days of the backfill")
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 9, 27))
    args = parser.parse_args()
    setup_django()

    import logging

    from prices.backfill import collect_days
    from prices.models import PricePoint
    from prices.sources.tcgcsv import TcgcsvClient

    logging.getLogger("prices").setLevel(logging.WARNING)  # not a line per day and group
    with tempfile.TemporaryDirectory() as cache:
        day_files = _group_ids(ARCHIVES / f"prices-{REAL_DAYS[0].isoformat()}.ppmd.7z")
        server = serve(day_files)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = TcgcsvClient(url, 3, cache_dir=Path(cache), timeout=(5.0, 60.0))
        with scratch_database("pokewatch_bench_tcgcsv") as where:
            print(f"database: {where}; tcgcsv mirror {url}; {len(day_files)} groups a day")
            first_day = args.end - timedelta(days=args.days - 1)
            started = time.perf_counter()
            first = collect_days(first_day, 1, client=client)
            one = time.perf_counter() - started
            d = first.days[0]
            print(
                f"first day {d.day}: {d.rows:,} prices, {d.cards_created:,} new cards, "
                f"archive to committed in {one:.1f} s (day itself {d.seconds:.1f} s); "
                f"peak RSS {peak_rss_mb():,.0f} MB"
            )
            times: list[float] = []

            def note(outcome: object) -> None:
                times.append(outcome.seconds)  # type: ignore[attr-defined]
                if len(times) % REPORT_EVERY == 0:  # memory and speed as the table grows
                    recent = sorted(times[-REPORT_EVERY:])
                    print(
                        f"  {len(times) + 1:>5} days: RSS {rss_mb():,.0f} MB (peak "
                        f"{peak_rss_mb():,.0f} MB), median day of the last {REPORT_EVERY} "
                        f"{recent[len(recent) // 2]:.1f} s",
                        flush=True,
                    )

            started = time.perf_counter()
            rest = collect_days(args.end, args.days - 1, client=client, on_day=note)
            wall = time.perf_counter() - started
            rows = rest.rows
            times.sort()
            print(
                f"backfill of {len(times)} more days: {rows:,} prices in {wall:.0f} s = "
                f"{len(times) / wall * 60:.1f} days/min, {rows / wall:,.0f} prices/s; "
                f"per day median {times[len(times) // 2]:.1f} s, slowest {times[-1]:.1f} s; "
                f"peak RSS {peak_rss_mb():,.0f} MB"
            )
            print(f"prices in the table: {PricePoint.objects.count():,}")
        server.shutdown()


def _group_ids(archive: Path) -> list[int]:
    import py7zr

    with py7zr.SevenZipFile(archive) as z:
        names = z.getnames()
    return sorted({int(n.split("/")[2]) for n in names if n.split("/")[1:2] == ["3"]})


if __name__ == "__main__":
    main()
