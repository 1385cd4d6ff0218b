from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from pokewatch_site.commands import PokeWatchCommand
from pokewatch_site.errors import PokeWatchError
from prices.cards import import_cards_file


class Command(PokeWatchCommand):
    help = "Load or update the tracked cards from a YAML file (default: config/cards.yaml)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default=str(settings.POKEWATCH_CARDS_FILE))

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = import_cards_file(options["path"])
        except PokeWatchError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(self.style.SUCCESS(f"{options['path']}: {result.summary()}"))
