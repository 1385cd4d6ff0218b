"""Fixtures shared by every test folder (a folder's own are in its conftest.py; plain
helpers and constants are in tests/support).

Tests marked ``postgres`` or ``redis`` need the real servers named by ``DATABASE_URL`` /
``REDIS_URL``. Locally, without them, those tests are skipped with a reason; in CI
(``CI`` set) a missing service is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import APIKey
from pipelines.models import ModelVersion
from pipelines.publishing import publish
from prices.models import Card, PricePoint
from tests.support import ML_DIR, require_service
from tests.support.api import DAYS, START, World
from tests.support.faults import CLOSED_URL, BlackHole

os.environ["ZENML_CONFIG_PATH"] = str(ML_DIR / "zenml")


@pytest.fixture
def ml_stores(settings):
    settings.MLFLOW_TRACKING_URI = f"sqlite:///{ML_DIR / 'mlflow.db'}"
    settings.MLFLOW_ARTIFACT_ROOT = (ML_DIR / "mlflow-artifacts").as_uri()
    return ML_DIR


@pytest.fixture(autouse=True)
def _service_markers(request: pytest.FixtureRequest) -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    if request.node.get_closest_marker("postgres") and not database_url.startswith(
        ("postgres://", "postgresql://")
    ):
        require_service("DATABASE_URL does not point at PostgreSQL")
    if request.node.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        require_service("REDIS_URL is not set")


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


@pytest.fixture
def make_version(db: None) -> Callable[..., ModelVersion]:
    """Model versions (``registered_name`` "test-model" unless given), straight to the table."""

    def make(estimator: str = "last_price", **fields: object) -> ModelVersion:
        values: dict[str, object] = {"registered_name": "test-model", "estimator": estimator}
        values.update(fields)
        return ModelVersion.objects.create(**values)

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


# --- The API's world: three cards, prices and a published champion (tests/support/api.py) ---


@pytest.fixture
def world(make_card, make_prices, make_version) -> World:
    """Three published cards: one BUY, one SELL and one HOLD on the last day, with a champion."""
    cards = [
        make_card(card_id="sv2a-151-mew-ex-205", name="Mew ex", set_code="sv2a", category="grail"),
        make_card(
            card_id="sv2a-151-pikachu-173", name="Pikachu", set_code="sv2a", category="chase"
        ),
        make_card(
            card_id="swsh-gengar-271", name="Gengar vmax", set_code="swsh08", category="chase"
        ),
    ]
    # deviations on the last day: mew -20% (BUY), pikachu +30% (SELL), gengar +1% (HOLD);
    # the band is fair -10% .. +10%, so the band rule gives the same signals.
    last_deviation = {cards[0].card_id: -0.2, cards[1].card_id: 0.3, cards[2].card_id: 0.01}
    rows = []
    for card in cards:
        make_prices(card, [100 + i for i in range(DAYS)], start=START, source="test")
        for i in range(DAYS):
            deviation = last_deviation[card.card_id] if i == DAYS - 1 else 0.0
            market = 100.0 + i
            fair = market / (1 + deviation)
            signal = "BUY" if deviation <= -0.1 else "SELL" if deviation >= 0.15 else "HOLD"
            rows.append(
                {
                    "card_id": card.card_id,
                    "date": pd.Timestamp(START + timedelta(days=i)),
                    "market_price": market,
                    "fair_price": fair,
                    "fair_low": fair * 0.9,
                    "fair_high": fair * 1.1,
                    "deviation": deviation,
                    "signal": signal,
                }
            )
    champion = make_version("model", registered_name="pokewatch-fair-value", registered_version="3")
    publish(champion, pd.DataFrame(rows))
    return World(cards, champion)


@pytest.fixture
def api(valid_key) -> Client:
    """A client that sends the valid key on every request."""
    return Client(HTTP_X_API_KEY=valid_key.raw)


# --- dependencies that fail: a black hole (hung) and a closed port (down) ----------------


@pytest.fixture
def black_hole() -> Iterator[str]:
    """The URL of a server that accepts connections but never answers (a hung Redis)."""
    server = BlackHole()
    yield server.url
    server.close()


@pytest.fixture(params=["down", "hanging"])
def unreachable_redis(request: pytest.FixtureRequest, black_hole: str) -> str:
    """The URL of a Redis that is down (a closed port) or hangs (a black hole)."""
    return CLOSED_URL if request.param == "down" else black_hole


@pytest.fixture
def broker_at() -> Iterator[Callable[[str], None]]:
    """Point the Celery app's broker at a URL for one test (connections for a check are
    made per use, not pooled)."""
    from pokewatch_site.celery import app

    original = app.conf.broker_url

    def point(url: str) -> None:
        app.conf.broker_url = url

    yield point
    app.conf.broker_url = original


# --- staff users with only the permissions a test gives them --------------------------


@pytest.fixture
def permitted_client(django_user_model) -> Callable[..., Client]:
    """A logged-in staff (not superuser) client holding exactly the named permissions."""
    from django.contrib.auth.models import Permission

    def make(*permissions: str) -> Client:
        number = django_user_model.objects.count()
        user = django_user_model.objects.create_user(f"staff-{number}", is_staff=True)
        for name in permissions:
            app_label, codename = name.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        client = Client()
        client.force_login(user)
        return client

    return make


# --- /metrics ------------------------------------------------------------------------------


@pytest.fixture
def metrics_token(settings) -> str:
    """/metrics requires this bearer token (tests.support.metrics.scrape sends it)."""
    from tests.support.metrics import TOKEN

    settings.POKEWATCH_METRICS_TOKEN = TOKEN
    return TOKEN
