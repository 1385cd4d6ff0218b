from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.keys import create_key, resolve_key
from pipelines.models import ModelVersion
from prices.cards import import_cards_file
from prices.csv_import import import_price_file
from prices.errors import PokeWatchError
from prices.models import PricePoint

DEMO_KEY_FILE = "demo_api_key.txt"


def ensure_demo_key(path: Path) -> str:
    """The demo key from ``path`` if it is still valid, else a new one written there."""
    if path.exists():
        raw = path.read_text(encoding="utf-8").strip()
        if resolve_key(raw) is not None:
            return raw
    _, raw = create_key("demo", owner="make run")
    path.write_text(raw + "\n", encoding="utf-8")
    path.chmod(0o600)
    return raw


class Command(BaseCommand):
    help = (
        "Prepare a local installation (run by `make run`): load the card universe and the "
        "demo cards, import the bundled demo price history if there are no prices yet, and "
        "train once if there is no champion model, and make sure a demo API key exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-train", dest="train", action="store_false", help="skip the first training run"
        )
        parser.add_argument("--port", default="8000", help="port shown in the curl example")

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
        raw = ensure_demo_key(settings.VAR_DIR / DEMO_KEY_FILE)
        self.stdout.write(f"demo API key (also in var/{DEMO_KEY_FILE}): {raw}")
        self.stdout.write(
            f'try: curl -H "X-API-Key: {raw}" http://127.0.0.1:{options["port"]}/api/v1/signals/'
        )
        self.stdout.write(self.style.SUCCESS("bootstrap done"))
