"""Which Redis DB each use lands on, from REDIS_URL and the per-use overrides."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import ROOT

PRINT_LOCATIONS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps([settings.CELERY_BROKER_URL, settings.CACHES["default"]["LOCATION"],
                  settings.CACHES["ratelimit"]["LOCATION"]]))
"""
OVERRIDES = (
    "REDIS_BROKER_DB", "REDIS_CACHE_DB", "REDIS_RATELIMIT_DB",
    "CELERY_BROKER_URL", "REDIS_CACHE_URL", "REDIS_RATELIMIT_URL",
)  # fmt: skip


def locations(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    return subprocess.run(
        [sys.executable, "-c", PRINT_LOCATIONS],
        cwd=ROOT,
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "pokewatch_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"REDIS_URL": "redis://cache.internal:6379"},
            ["redis://cache.internal:6379/0", "redis://cache.internal:6379/1",
             "redis://cache.internal:6379/2"],
        ),
        (  # the DB in REDIS_URL is honoured: a second deployment on the same server
            {"REDIS_URL": "redis://cache.internal:6379/5"},
            ["redis://cache.internal:6379/5", "redis://cache.internal:6379/6",
             "redis://cache.internal:6379/7"],
        ),
        (  # credentials and options are kept
            {"REDIS_URL": "rediss://:s3cret@cache.internal:6380/3?ssl_cert_reqs=required"},
            ["rediss://:s3cret@cache.internal:6380/3?ssl_cert_reqs=required",
             "rediss://:s3cret@cache.internal:6380/4?ssl_cert_reqs=required",
             "rediss://:s3cret@cache.internal:6380/5?ssl_cert_reqs=required"],
        ),
        (
            {"REDIS_URL": "redis://a:6379/5", "REDIS_RATELIMIT_DB": "9"},
            ["redis://a:6379/5", "redis://a:6379/6", "redis://a:6379/9"],
        ),
        (  # each use may have a URL of its own
            {"REDIS_URL": "redis://a:6379", "REDIS_CACHE_URL": "redis://b:6379/0",
             "CELERY_BROKER_URL": "redis://c:6379/4"},
            ["redis://c:6379/4", "redis://b:6379/0", "redis://a:6379/2"],
        ),
    ],
)  # fmt: skip
def test_each_redis_use_gets_its_own_db(env: dict[str, str], expected: list[str]) -> None:
    result = locations(**env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def test_if_two_uses_share_a_db_then_startup_is_refused_without_the_password() -> None:
    result = locations(REDIS_URL="redis://:s3cret@a:6379/1", REDIS_CACHE_DB="1")
    assert result.returncode != 0
    assert "Two Redis uses share one DB" in result.stderr
    assert "s3cret" not in result.stderr


def test_if_redis_url_has_a_path_that_is_no_db_number_then_startup_names_it() -> None:
    result = locations(REDIS_URL="redis://a:6379/cache")
    assert result.returncode != 0
    assert "REDIS_URL's path must be a DB number, got 'cache'" in result.stderr
