from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from io import StringIO

import pandas as pd
import pytest
from django.core.management import call_command
from django.test import Client

from pipelines.publishing import publish
from prices import caching
from tests.support import ROOT, database_url
from tests.support.api import LAST

MEW = "sv2a-151-mew-ex-205"
URL = f"/api/v1/cards/{MEW}/fair-price/"


def test_second_read_is_a_hit(api: Client, world) -> None:
    first, second = api.get(URL).json(), api.get(URL).json()
    stats = caching.stats()
    assert first == second
    assert (stats.hits, stats.misses) == (1, 1)
    assert stats.hit_rate == 0.5
    assert stats.entries == 1


def test_a_new_champion_makes_old_entries_unreachable(
    api: Client, world, django_capture_on_commit_callbacks, make_version
) -> None:
    before = api.get(URL).json()
    generation = caching.current_generation()
    frame = pd.DataFrame(
        [
            {
                "card_id": MEW,
                "date": pd.Timestamp(LAST),
                "market_price": 109.0,
                "fair_price": 100.0,
                "deviation": 0.09,
                "signal": "HOLD",
            }
        ]
    )
    with django_capture_on_commit_callbacks(execute=True):  # as when the publish commits
        publish(
            make_version("ewm", registered_name="pokewatch-fair-value", registered_version="4"),
            frame,
        )
    after = api.get(URL).json()
    assert caching.current_generation() == generation + 1
    assert before["model_version"] == "pokewatch-fair-value/3"
    assert (after["model_version"], after["fair_price"]) == ("pokewatch-fair-value/4", "100.00")


def test_if_the_cache_is_down_then_reads_come_from_the_database(
    api: Client, world, settings
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/1",
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.2},
        },
    }
    response = api.get(URL)
    health = api.get("/api/v1/health/").json()
    assert response.status_code == 200 and response.json()["signal"] == "BUY"
    assert (health["status"], health["cache"]) == ("degraded", "error")


@pytest.mark.redis
def test_cache_stats_command_and_clear(
    api: Client, world, django_capture_on_commit_callbacks
) -> None:
    api.get(URL)
    api.get(URL)
    out = StringIO()
    call_command("cache_stats", "--json", stdout=out)
    shown = json.loads(out.getvalue())
    assert (shown["hits"], shown["misses"], shown["entries"]) == (1, 1, 1)
    table = StringIO()
    call_command("cache_stats", stdout=table)
    assert "hit rate   50.0%" in table.getvalue()
    cleared = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("cache_stats", "--clear", "--json", stdout=cleared)
    after = json.loads(cleared.getvalue())
    assert (after["hits"], after["misses"], after["entries"]) == (0, 0, 0)
    assert caching.current_generation() == shown["generation"] + 1


def test_with_a_per_process_cache_the_command_says_what_it_cannot_see(
    api: Client, world, settings
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    api.get(URL)
    api.get(URL)  # a hit in this process, which stands for the server here
    shown = StringIO()
    call_command("cache_stats", "--json", stdout=shown)
    table = StringIO()
    call_command("cache_stats", stdout=table)
    cleared = StringIO()
    generation = caching.current_generation()
    call_command("cache_stats", "--clear", stdout=cleared)

    as_json = json.loads(shown.getvalue())
    assert as_json["shared"] is False
    assert (as_json["hits"], as_json["misses"], as_json["entries"]) == (None, None, None)
    rows = [line.split()[0] for line in table.getvalue().splitlines()]
    assert "hits" not in rows and "misses" not in rows  # no 0/0/0 read as the server's
    assert "cannot see; the admin's cache page (/admin/cache-stats/)" in table.getvalue()
    assert "the server's counters are reset from the admin's cache page only" in (
        cleared.getvalue()
    )
    # The generation is shared (the database): every process drops its entries.
    assert caching.current_generation() == generation + 1


def test_admin_cache_page_shows_stats_and_clears_with_csrf(admin_user, api: Client, world) -> None:
    api.get(URL)
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(admin_user)
    page = staff.get("/admin/cache-stats/")
    assert page.status_code == 200
    assert "Misses" in page.text
    assert "LocMemCache" in page.text or "RedisCache" in page.text
    assert staff.post("/admin/cache-stats/").status_code == 403  # no CSRF token
    token = page.context["csrf_token"]
    cleared = staff.post("/admin/cache-stats/", {"csrfmiddlewaretoken": str(token)})
    assert cleared.status_code == 302
    assert caching.stats().misses == 0


def test_admin_cache_page_is_staff_only(client: Client, db) -> None:
    response = client.get("/admin/cache-stats/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.redis
@pytest.mark.postgres
def test_with_redis_every_process_sees_the_same_numbers(transactional_db, world, valid_key) -> None:
    api = Client(HTTP_X_API_KEY=valid_key.raw)
    api.get(URL)
    api.get(URL)
    # This process adds its counts to the shared ones a second later, on a timer.
    time.sleep(caching.COUNT_FLUSH_SECONDS + 0.5)
    env = {**os.environ, "DATABASE_URL": database_url()}
    result = subprocess.run(
        [sys.executable, "manage.py", "cache_stats", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    other = json.loads(result.stdout.strip().splitlines()[-1])
    assert other["backend"] == "RedisCache"
    assert (other["hits"], other["misses"], other["entries"]) == (1, 1, 1)


# --- a publish while this process cannot reach Redis ------------------------------------


@pytest.mark.redis
def test_if_redis_is_unreachable_then_a_new_generation_is_logged_and_seen_within_the_bound(
    settings, db, unreachable_redis, django_capture_on_commit_callbacks, caplog
) -> None:
    import logging

    from django.core.cache import cache
    from django.db import transaction

    from tests.support.faults import redis_caches

    shared = settings.CACHES
    old = caching.current_generation()  # mirrored into the shared Redis
    settings.CACHES = redis_caches(unreachable_redis, 0.2)  # this process loses Redis
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        new = caching.bump_generation()
    assert new == old + 1
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert (
        f"prediction cache: generation {new} could not be written to the shared cache; other "
        f"processes may serve the previous predictions for up to {caching.STALE_BOUND} s"
    ) in warned
    assert all(r.exc_info is None for r in caplog.records)

    # Another process still reads the old mirror, which expires within the bound.
    settings.CACHES = shared
    assert caching.current_generation() == old
    assert 0 < cache.ttl(caching.GENERATION_KEY) <= caching.GENERATION_MIRROR_TTL  # type: ignore[attr-defined]
    cache.delete(caching.GENERATION_KEY)  # as when it expires
    assert caching.current_generation() == new
