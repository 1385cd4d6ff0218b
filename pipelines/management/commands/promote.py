from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from pipelines.training import AlreadyChampion, promote_version
from pokewatch_site.commands import PokeWatchCommand
from pokewatch_site.errors import PokeWatchError


class Command(PokeWatchCommand):
    help = (
        "Make an earlier registered model version the champion again (rollback): its "
        "predictions are recomputed and published atomically."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="MLflow registered version, e.g. 3")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = promote_version(options["version"])
        except AlreadyChampion as exc:
            self.stdout.write(str(exc))
            return
        except PokeWatchError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.version} is the champion again: {result.written} predictions "
                f"published, {result.pruned} older ones pruned"
            )
        )
