"""An unknown key prefix is cached as such, briefly, in the shared cache: a flood of made-up
keys costs cache reads, not a database query each (issue 13). Creating the key forgets it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import keys
from accounts.models import APIKey

pytestmark = pytest.mark.redis

CARDS = "/api/v1/cards/"


def test_an_unknown_prefix_costs_one_query_then_none(client: Client, db) -> None:
    forged = {"HTTP_X_API_KEY": "Madeup01.abcdefghijklmnopqrstuvwxyz012345"}
    with CaptureQueriesContext(connection) as first:
        assert client.get(CARDS, **forged).status_code == 401
    with CaptureQueriesContext(connection) as again:
        for _ in range(5):
            assert client.get(CARDS, **forged).status_code == 401
    assert any("accounts_apikey" in q["sql"] for q in first.captured_queries)
    assert again.captured_queries == []


def test_the_negative_entry_is_short_lived() -> None:
    assert keys.MISSING_TTL <= 10 < keys.CACHE_TTL


def test_a_key_created_with_a_cached_missing_prefix_works_at_once(client: Client, db) -> None:
    key = APIKey(name="soon")
    raw = APIKey.objects.assign_key(key)  # its key and prefix, not saved yet
    assert client.get(CARDS, HTTP_X_API_KEY=raw).status_code == 401  # cached as missing
    key.save()  # creating the key forgets the cached "missing"
    assert client.get(CARDS, HTTP_X_API_KEY=raw).status_code == 200


def test_revoking_then_restoring_is_seen_at_once(client: Client, db, make_key) -> None:
    issued = make_key("flip")
    keys.revoke_key(issued.prefix)
    assert client.get(CARDS, HTTP_X_API_KEY=issued.raw).status_code == 401
    issued.key.refresh_from_db()
    issued.key.revoked = False
    issued.key.save()
    assert client.get(CARDS, HTTP_X_API_KEY=issued.raw).status_code == 200
