"""Cache fixtures of the key tests (the key-state fixtures are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def shared_cache(settings, tmp_path) -> None:
    """A cache every process would share (files), so that lookups are cached."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }


@pytest.fixture
def local_cache(settings) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "accounts-tests",
        }
    }
