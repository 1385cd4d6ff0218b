"""Shared fixtures.

Tests marked ``postgres`` or ``redis`` need the real servers named by ``DATABASE_URL`` /
``REDIS_URL``. Locally, without them, those tests are skipped with a reason; in CI
(``CI`` set) a missing service is a failure, never a skip.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import APIKey
from prices.models import Card, PricePoint

pytest_plugins = ["tests.api_fixtures", "tests.demo_fixtures", "tests.tcgcsv_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
DEMO_CSV = ROOT / "config" / "demo" / "tcgplayer_market_prices_dev.csv"

# MLflow and ZenML state of the test session lives in a throwaway folder, never in var/.
ML_DIR = Path(tempfile.mkdtemp(prefix="pokewatch-tests-ml-"))
os.environ["ZENML_CONFIG_PATH"] = str(ML_DIR / "zenml")


@pytest.fixture
def ml_stores(settings):
    settings.MLFLOW_TRACKING_URI = f"sqlite:///{ML_DIR / 'mlflow.db'}"
    settings.MLFLOW_ARTIFACT_ROOT = (ML_DIR / "mlflow-artifacts").as_uri()
    return ML_DIR


def _require(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI requires this service: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _service_markers(request: pytest.FixtureRequest) -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    if request.node.get_closest_marker("postgres") and not database_url.startswith(
        ("postgres://", "postgresql://")
    ):
        _require("DATABASE_URL does not point at PostgreSQL")
    if request.node.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        _require("REDIS_URL is not set")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    """Each test starts with no cached predictions, keys or rate-limit counts.

    The database (and so the cache generation) is rolled back after every test, so
    entries of an earlier test could otherwise look current. Redis is cleaned by key
    pattern, never flushed.
    """
    from django.core.cache import caches

    from pokewatch_site import caching

    caching.clear_memos()
    for alias in ("default", "ratelimit"):
        backend = caches[alias]
        if hasattr(backend, "delete_pattern"):
            for pattern in ("pred*", "apikey*", "rl:*"):
                backend.delete_pattern(pattern)
        else:
            backend.clear()


def test_database_url() -> str:
    """The URL of the PostgreSQL test database (``test_<name>``) this process is using."""
    from urllib.parse import quote

    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    user = quote(db["USER"], safe="")
    return f"postgres://{user}{password}@{db['HOST'] or 'localhost'}{port}/{db['NAME']}"


test_database_url.__test__ = False  # type: ignore[attr-defined]  # not a test


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def make_card(db: None) -> Callable[..., Card]:
    counter = iter(range(1, 1_000_000))

    def make(**fields: object) -> Card:
        n = next(counter)
        values: dict[str, object] = {"card_id": f"test-card-{n}", "name": f"Test card {n}"}
        values.update(fields)
        return Card.objects.create(**values)

    return make


@pytest.fixture
def make_prices(db: None) -> Callable[..., list[PricePoint]]:
    def make(
        card: Card, prices: list[float], *, start: date = date(2026, 1, 1), source: str = "test"
    ) -> list[PricePoint]:
        """Prices through the ingestion service, the only writer of prices (no scoring)."""
        from prices.ingestion import upsert_prices
        from prices.sources.base import PriceRow

        rows = [
            PriceRow(card.card_id, start + timedelta(days=i), Decimal(str(p)))
            for i, p in enumerate(prices)
        ]
        upsert_prices(rows, source=source)
        card.refresh_from_db()
        return list(PricePoint.objects.filter(card=card, source=source).order_by("date"))

    return make


# --- API keys: one fixture per key state ------------------------------------------------


@dataclass
class IssuedKey:
    key: APIKey
    raw: str

    @property
    def prefix(self) -> str:
        return self.key.prefix


@pytest.fixture
def make_key(db: None) -> Callable[..., IssuedKey]:
    """Any key, straight through the library's manager (no checks, so past expiry is fine)."""

    def make(name: str = "test key", **fields: object) -> IssuedKey:
        key, raw = APIKey.objects.create_key(name=name, **fields)
        return IssuedKey(key, raw)

    return make


@pytest.fixture
def valid_key(make_key) -> IssuedKey:
    return make_key("valid key", owner="Ash", expiry_date=timezone.now() + timedelta(days=30))


@pytest.fixture
def revoked_key(make_key) -> IssuedKey:
    return make_key("revoked key", revoked=True)


@pytest.fixture
def expired_key(make_key) -> IssuedKey:
    return make_key("expired key", expiry_date=timezone.now() - timedelta(minutes=1))


@pytest.fixture
def missing_raw_key(db: None) -> str:
    """Well formed, but no key has this prefix."""
    return "Nokey000.abcdefghijklmnopqrstuvwxyz012345"
