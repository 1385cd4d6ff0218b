"""With Redis as the cache, a revoke takes effect at once in every process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.cache import cache

from accounts import keys
from accounts.keys import create_key, resolve_key, revoke_key
from pokewatch_site import caching
from tests.support import ROOT, database_url

# Another process: resolves each key read from stdin, printing "valid" or "refused".
RESOLVER = """
import sys, django
django.setup()
from accounts.keys import resolve_key
for line in sys.stdin:
    print("valid" if resolve_key(line.strip()) else "refused", flush=True)
"""

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def resolver(transactional_db):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pokewatch_site.settings",
        "DATABASE_URL": database_url(),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", RESOLVER],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def ask(raw_key: str) -> str:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(raw_key + "\n")
        process.stdin.flush()
        return process.stdout.readline().strip()

    yield ask
    process.stdin.close()
    process.wait(timeout=30)


def test_if_key_is_revoked_in_one_process_then_another_refuses_it_at_once(resolver) -> None:
    assert caching.is_shared()
    key, raw = create_key("cross-process")
    entry_key, _ = keys.cache_keys(key.prefix)
    try:
        assert resolver(raw) == "valid"
        assert cache.get(entry_key) is not None  # the other process cached its lookup
        assert resolver(raw) == "valid"
        revoke_key(key.prefix)
        assert resolver(raw) == "refused"
        assert resolve_key(raw) is None
    finally:
        cache.delete_many(keys.cache_keys(key.prefix))


# Another process serving the API: GETs a fair price with each key read from stdin and
# prints the status.
API_CLIENT = """
import sys, django
django.setup()
from django.test import Client
client = Client()
for line in sys.stdin:
    response = client.get(sys.argv[1], HTTP_X_API_KEY=line.strip())
    print(response.status_code, flush=True)
"""


def test_a_revoke_reaches_another_processes_cached_reads_at_once(transactional_db, world) -> None:
    url = f"/api/v1/cards/{world.cards[0].card_id}/fair-price/"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pokewatch_site.settings",
        "DATABASE_URL": database_url(),
        "DEBUG": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", API_CLIENT, url],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    key, raw = create_key("cross-process fast reads")

    def ask() -> str:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(raw + "\n")
        process.stdin.flush()
        return process.stdout.readline().strip()

    try:
        assert ask() == "200"  # fills the key's and the prediction's cache entries
        assert cache.get(keys.cache_keys(key.prefix)[0]) is not None
        assert ask() == "200"  # from the cache
        revoke_key(key.prefix)
        assert ask() == "401"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)
        cache.delete_many(keys.cache_keys(key.prefix))
