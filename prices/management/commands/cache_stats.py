from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from prices import caching


class Command(BaseCommand):
    help = "Show (or with --clear, reset) the prediction cache's statistics."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clear", action="store_true", help="drop entries, reset counters")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        stats = caching.clear() if options["clear"] else caching.stats()
        if options["json"]:
            self.stdout.write(json.dumps(stats.as_dict()))
            return
        if options["clear"]:
            self.stdout.write(self.style.SUCCESS("prediction cache cleared"))
        rate = "—" if stats.hit_rate is None else f"{stats.hit_rate:.1%}"
        entries = "unknown" if stats.entries is None else str(stats.entries)
        for label, value in (
            ("backend", stats.backend),
            ("hits", stats.hits),
            ("misses", stats.misses),
            ("hit rate", rate),
            ("entries", entries),
            ("generation", stats.generation),
        ):
            self.stdout.write(f"{label:<11}{value}")
