"""Unknown ids are cached as not found, with the generation, so a batch of unknown ids
costs one cache round trip instead of a database query each (issue 13)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from pokewatch_site.errors import NotFound
from prices import caching

BATCH = "/api/v1/fair-price/batch/"
UNKNOWN = [f"no-such-card-{i}" for i in range(100)]


def post_batch(api: Client, ids: list[str]):  # type: ignore[no-untyped-def]
    return api.post(BATCH, json.dumps({"card_ids": ids}), content_type="application/json")


def test_a_not_found_is_cached_and_raised_again(world) -> None:
    calls = []

    def compute() -> dict:
        calls.append(1)
        raise NotFound("Unknown card 'x'.")

    for _ in range(3):
        with pytest.raises(NotFound, match="Unknown card 'x'."):
            caching.read_entry(("fair", "x", "latest"), compute)
    assert calls == [1]


def test_a_new_generation_forgets_a_cached_not_found(
    world, django_capture_on_commit_callbacks
) -> None:
    def missing() -> dict:
        raise NotFound("Unknown card 'x'.")

    with pytest.raises(NotFound):
        caching.read_entry(("fair", "x", "latest"), missing)
    with django_capture_on_commit_callbacks(execute=True):  # as a publish commits
        caching.bump_generation()
    assert caching.read_entry(("fair", "x", "latest"), lambda: {"card_id": "x"})[0] == {
        "card_id": "x"
    }


@pytest.mark.redis
def test_a_batch_of_unknown_ids_costs_no_query_and_one_fetch_the_second_time(
    api: Client, world
) -> None:
    first = post_batch(api, UNKNOWN)
    assert first.status_code == 200
    assert [item["found"] for item in first.json()] == [False] * 100
    with (
        CaptureQueriesContext(connection) as queries,
        mock.patch.object(cache, "get_many", wraps=cache.get_many) as get_many,
        mock.patch.object(cache, "get", wraps=cache.get) as get,
    ):
        again = post_batch(api, UNKNOWN)
    assert again.json() == first.json()
    assert queries.captured_queries == []  # was a query per id (~175 ms for 100)
    # One MGET for the key's row and one for the batch's 100 entries and the generation.
    assert get_many.call_count == 2
    assert get.call_count == 0


@pytest.mark.redis
def test_a_known_id_in_a_batch_is_still_served(api: Client, world) -> None:
    ids = ["sv2a-151-mew-ex-205", "no-such-card"]
    for _ in range(2):
        items = post_batch(api, ids).json()
        assert [item["found"] for item in items] == [True, False]
        assert items[1]["detail"] == "Unknown card 'no-such-card'."
