from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from pipelines.scoring import score
from pokewatch_site.commands import PokeWatchCommand, iso_date


class Command(PokeWatchCommand):
    help = "Compute the champion's predictions for prices that have none yet (no retraining)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=iso_date, help="first day to score (default: the serving window)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = score(since=options["since"])
        self.stdout.write(result.summary())
