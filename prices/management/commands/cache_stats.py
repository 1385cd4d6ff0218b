from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from pokewatch_site.commands import PokeWatchCommand
from prices import caching

#: What the command says when the cache is per process (the embedded local-memory cache).
PER_PROCESS = (
    "the cache is per process (local memory, no REDIS_URL): its hits, misses and entries "
    "live in each server process, which this command cannot see; the admin's cache page "
    "(/admin/cache-stats/) shows the server's"
)


class Command(PokeWatchCommand):
    help = (
        "Show (or with --clear, reset) the prediction cache's statistics. With a shared "
        "cache (Redis) they are every process's; with the per-process local-memory cache "
        "only the generation is shared, and --clear drops every process's entries (a new "
        "generation) but not the server's counters."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clear", action="store_true", help="drop entries, reset counters")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        stats = caching.clear() if options["clear"] else caching.stats()
        shared = caching.is_shared()
        if options["json"]:
            shown = stats.as_dict()
            if not shared:  # this process's own numbers would read as the server's zeros
                shown.update(hits=None, misses=None, hit_rate=None, entries=None)
            self.stdout.write(json.dumps({**shown, "shared": shared}))
            return
        if options["clear"]:
            cleared = "prediction cache cleared" + (
                ""
                if shared
                else " (a new generation: every process drops its entries "
                f"within {caching.GENERATION_POLL_SECONDS:g} s; the server's counters are "
                "reset from the admin's cache page only)"
            )
            self.stdout.write(self.style.SUCCESS(cleared))
        if not shared:
            self.stdout.write(f"backend    {stats.backend}")
            self.stdout.write(f"generation {stats.generation}")
            self.stdout.write(self.style.WARNING(PER_PROCESS))
            return
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
