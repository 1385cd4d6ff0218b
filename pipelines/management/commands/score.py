from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipelines.scoring import score


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since must be YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = "Compute the champion's predictions for prices that have none yet (no retraining)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=_iso_date, help="first day to score (default: the serving window)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = score(since=options["since"])
        self.stdout.write(result.summary())
