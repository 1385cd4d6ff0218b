from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipelines.models import ModelVersion
from prices.cards import import_cards_file
from prices.csv_import import import_price_file
from prices.errors import PokeWatchError
from prices.models import PricePoint


class Command(BaseCommand):
    help = (
        "Prepare a local installation (run by `make run`): load the card universe and the "
        "demo cards, import the bundled demo price history if there are no prices yet, and "
        "train once if there is no champion model."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-train", dest="train", action="store_false", help="skip the first training run"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            for path in (settings.POKEWATCH_CARDS_FILE, settings.POKEWATCH_DEMO_CARDS_FILE):
                result = import_cards_file(path)
                name = path.relative_to(settings.BASE_DIR)
                self.stdout.write(f"cards from {name}: {result.summary()}")
            if PricePoint.objects.exists():
                self.stdout.write("prices already loaded; demo history not imported again")
            else:
                self.stdout.write("importing the bundled demo price history…")
                ingested = import_price_file(
                    settings.POKEWATCH_DEMO_PRICES_FILE, source="tcgplayer-demo"
                )
                self.stdout.write(ingested.summary())
        except PokeWatchError as exc:
            raise CommandError(exc.detail) from exc
        if options["train"] and not ModelVersion.objects.filter(is_champion=True).exists():
            self.stdout.write("no champion model yet: training once (about a minute)…")
            call_command("run_pipeline", stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("bootstrap done"))
