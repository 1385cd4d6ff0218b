from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pokewatch_site.commands import (
    PokeWatchCommand,
    iso_date,
    non_negative_decimal,
    non_negative_int,
    positive_int,
)
from pokewatch_site.errors import PokeWatchError
from prices.backfill import CollectionResult, DayOutcome, collect_days
from prices.collection import SOURCES, collect_prices


class Command(PokeWatchCommand):
    help = (
        "Fetch prices from a source and upsert them (idempotent). tcgcsv reads one daily "
        "archive per day of the window (the live prices for today), a transaction per day; "
        "days already ingested are skipped unless --force, so a long backfill can resume."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--source",
            choices=SOURCES,
            default=settings.POKEWATCH_PRICE_SOURCE,
            help="where prices come from (default: POKEWATCH_PRICE_SOURCE, "
            f"{settings.POKEWATCH_PRICE_SOURCE})",
        )
        parser.add_argument("--date", type=iso_date, help="last day to fetch (default: today)")
        parser.add_argument("--days", type=int, default=1, help="number of days up to --date")
        parser.add_argument(
            "--force", action="store_true", help="tcgcsv: ingest days already ingested again"
        )
        parser.add_argument(
            "--group",
            type=positive_int,
            action="append",
            help="tcgcsv: only this group (set) id; repeat for several (default: the whole "
            "catalog, or POKEWATCH_TCGCSV_GROUPS)",
        )
        parser.add_argument(
            "--min-price",
            type=non_negative_decimal,
            help="tcgcsv: a product not tracked yet becomes a card from this price (USD) on",
        )
        parser.add_argument("--seed", type=non_negative_int, default=42, help="simulator seed")
        parser.add_argument(
            "--cards",
            type=non_negative_int,
            default=0,
            help="simulator: add this many simulated cards",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["source"]
        if options["cards"] and source != "simulated":
            raise CommandError("--cards only applies to --source simulated")
        tcgcsv_only = ("force", "group", "min_price")
        if source != "tcgcsv" and any(options[o] for o in tcgcsv_only):
            raise CommandError("--force, --group and --min-price only apply to --source tcgcsv")
        try:
            if source == "tcgcsv":
                self._tcgcsv(options)
                return
            result = collect_prices(
                source,
                end=options["date"],
                days=options["days"],
                seed=options["seed"],
                extra_cards=options["cards"],
                progress=self.stdout.write,
            )
        except PokeWatchError as exc:
            raise CommandError(exc.detail) from exc
        if result.skipped_cards:
            self.stdout.write(
                self.style.WARNING(
                    f"no prices for {len(result.skipped_cards)} card(s): "
                    + ", ".join(result.skipped_cards[:10])
                )
            )
        self.stdout.write(self.style.SUCCESS(result.summary()))

    def _tcgcsv(self, options: dict[str, Any]) -> None:
        progress = _Progress(self, options["days"])
        try:
            with progress.logs_above_the_bar():
                result = collect_days(
                    options["date"],
                    options["days"],
                    force=options["force"],
                    group_ids=options["group"],
                    min_price=options["min_price"],
                    on_day=progress.day,
                )
        finally:
            progress.close()
        self._report(result)

    def _report(self, result: CollectionResult) -> None:
        style = self.style.WARNING if result.count("failed") else self.style.SUCCESS
        self.stdout.write(style(result.summary()))
        if result.count("failed"):
            raise CommandError(
                f"{result.count('failed')} day(s) failed and wrote nothing; run again to retry "
                f"them (collection #{result.run.pk})"
            )


class _Progress:
    """A progress bar (days, prices, rate, ETA) on a terminal; a line per day otherwise."""

    def __init__(self, command: BaseCommand, days: int) -> None:
        self.command = command
        self.started = time.perf_counter()
        self.rows = 0
        self.bar = None
        if command.stdout.isatty():
            from tqdm import tqdm

            self.out = command.stdout._out
            self.bar = tqdm(total=days, unit="day", file=self.out, dynamic_ncols=True)

    def logs_above_the_bar(self) -> AbstractContextManager[object]:
        """While the bar is shown, log lines print above it instead of through it."""
        if self.bar is None:
            return nullcontext()
        from tqdm.contrib.logging import logging_redirect_tqdm

        return logging_redirect_tqdm(tqdm_class=type(self.bar))

    def day(self, outcome: DayOutcome) -> None:
        self.rows += outcome.rows
        rate = self.rows / max(time.perf_counter() - self.started, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{outcome.day} {self.rows:,} prices, {rate:,.0f}/s")
            self.bar.update(1)
            if outcome.status in ("failed", "missing"):
                self.bar.write(f"{outcome.day}: {outcome.status}: {outcome.detail}", file=self.out)
            return
        if outcome.status == "ingested":
            text = (
                f"{outcome.day}: {outcome.rows:,} prices, {outcome.cards_created:,} new cards "
                f"in {outcome.seconds:.1f} s ({self.rows:,} so far, {rate:,.0f} prices/s)"
            )
        else:
            text = f"{outcome.day}: {outcome.status}: {outcome.detail}"
        self.command.stdout.write(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
