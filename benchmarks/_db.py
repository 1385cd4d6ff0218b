"""Run a benchmark against a throwaway copy of the configured database, never the real one."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager

import django


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokewatch_site.settings")
    django.setup()


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """Create an empty, migrated database ``<name>`` beside the configured one, then drop it."""
    from django.db import connection

    settings_dict = connection.settings_dict
    settings_dict.setdefault("TEST", {})
    if connection.vendor == "postgresql":
        settings_dict["TEST"]["NAME"] = name
    original = settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield f"{connection.vendor}:{connection.settings_dict['NAME']}"
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """The process's resident memory now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
