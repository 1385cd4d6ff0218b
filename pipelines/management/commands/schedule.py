from __future__ import annotations

from typing import Any

from pipelines.admin import beat_schedule
from pokewatch_site.commands import PokeWatchCommand


class Command(PokeWatchCommand):
    help = "Show the Celery beat schedule (crontab, UTC) and when each entry runs next."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("beat schedule (UTC):")
        for entry in beat_schedule():
            when = f"{entry['next_run']:%Y-%m-%d %H:%M}"
            self.stdout.write(
                f"  {entry['name']:<26} {entry['crontab']:<14} next {when}  → {entry['task']}"
            )
