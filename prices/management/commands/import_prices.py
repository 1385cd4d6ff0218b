from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from pokewatch_site.commands import PokeWatchCommand
from pokewatch_site.errors import PokeWatchError
from prices.csv_import import import_price_file


class Command(PokeWatchCommand):
    help = (
        "Import a price CSV (card_id,date,market_price[,currency,card_name,set_name]). "
        "All or nothing: any bad row aborts the file and names its line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--source", default="csv", help="source name stored with each price")
        parser.add_argument(
            "--create-cards",
            action="store_true",
            help="create cards the file names but the database lacks (name from card_name)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = import_price_file(
                options["file"],
                source=options["source"],
                create_cards=options["create_cards"],
                progress=self.stdout.write,
            )
        except PokeWatchError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(self.style.SUCCESS(result.summary()))
