"""With Redis as the cache, a revoke takes effect at once in every process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache

from accounts import keys
from accounts.keys import create_key, resolve_key, revoke_key
from tests.conftest import test_database_url

ROOT = Path(__file__).resolve().parents[2]

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
        "DATABASE_URL": test_database_url(),
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
    assert keys.cache_is_shared()
    key, raw = create_key("cross-process")
    entry_key, _ = keys._cache_keys(key.prefix)
    try:
        assert resolver(raw) == "valid"
        assert cache.get(entry_key) is not None  # the other process cached its lookup
        assert resolver(raw) == "valid"
        revoke_key(key.prefix)
        assert resolver(raw) == "refused"
        assert resolve_key(raw) is None
    finally:
        cache.delete_many(keys._cache_keys(key.prefix))
