from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from prices.cards import import_cards_file
from prices.csv_import import import_price_file
from prices.errors import PokeWatchError
from prices.models import PricePoint


class Command(BaseCommand):
    help = (
        "Prepare a local installation (run by `make run`): load the card universe and the "
        "demo cards, and import the bundled demo price history if there are no prices yet."
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
        self.stdout.write(self.style.SUCCESS("bootstrap done"))
