from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from prices.collection import SOURCES, collect_prices
from prices.errors import PokeWatchError


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = "Fetch prices from a source for every active card and upsert them (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", choices=SOURCES, default=settings.POKEWATCH_PRICE_SOURCE)
        parser.add_argument("--date", type=_iso_date, help="last day to fetch (default: today)")
        parser.add_argument("--days", type=int, default=1, help="number of days up to --date")
        parser.add_argument("--seed", type=int, default=42, help="simulator seed")
        parser.add_argument(
            "--cards", type=int, default=0, help="simulator: add this many simulated cards"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["cards"] and options["source"] != "simulated":
            raise CommandError("--cards only applies to --source simulated")
        try:
            result = collect_prices(
                options["source"],
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
