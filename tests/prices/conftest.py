"""Fixtures of the prices tests: a local tcgcsv.com and its clients, graded served signals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from pytest_httpserver import HTTPServer

from prices.models import SignalRecord
from prices.sources.tcgcsv import TcgcsvClient
from tests.support.api import World
from tests.support.tcgcsv import CATEGORY, TcgcsvServer


@pytest.fixture
def tcgcsv_server(httpserver: HTTPServer) -> TcgcsvServer:
    return TcgcsvServer(httpserver)


@pytest.fixture
def make_tcgcsv_client(tcgcsv_server: TcgcsvServer, tmp_path: Path) -> Callable[..., TcgcsvClient]:
    """Clients of ``tcgcsv_server`` sharing one cache in tmp_path; options can be overridden."""

    def make(**options: object) -> TcgcsvClient:
        settings: dict = {"cache_dir": tmp_path / "tcgcsv-cache", "timeout": (2.0, 10.0)}
        settings.update({"max_retries": 2, "backoff_factor": 0.0, "backoff_max": 0.0})
        settings.update(options)
        return TcgcsvClient(tcgcsv_server.url, CATEGORY, **settings)

    return make


@pytest.fixture
def tcgcsv_client(make_tcgcsv_client: Callable[..., TcgcsvClient]) -> TcgcsvClient:
    return make_tcgcsv_client()


# --- the track record: served signals of the API world, graded by hand ---------------

DAY = date(2026, 3, 1)


def record(card, day: int, signal: str, realised: float | None, graded: bool = True) -> None:
    market = 100.0
    SignalRecord.objects.create(
        card=card,
        date=DAY + timedelta(days=day),
        horizon=30,
        signal_rule="band",
        signal=signal,
        market_price=Decimal("100.00"),
        fair_price=Decimal("105.00"),
        fair_low=Decimal("101.00"),
        fair_high=Decimal("110.00"),
        buy_threshold=0.10,
        sell_threshold=0.15,
        published_at=timezone.now(),
        graded_at=timezone.now() if graded else None,
        realised_median=None if realised is None else Decimal(f"{realised:.2f}"),
        realised_return=None if realised is None else realised / market - 1,
        rose=None if realised is None else realised >= market / 0.9,
        fell=None if realised is None else realised <= market / 1.15,
    )


@pytest.fixture
def graded(world: World) -> World:
    """Served signals of the three cards from 2026-03-01: right, wrong, HOLD and ungraded."""
    mew, pikachu, gengar = world.cards
    # BUY: +20 % (right), +5 % (hit only), -10 % (wrong)
    record(mew, 0, "BUY", 120.0)
    record(mew, 1, "BUY", 105.0)
    record(pikachu, 0, "BUY", 90.0)
    # SELL: -20 % (right), +2 % (wrong)
    record(pikachu, 1, "SELL", 80.0)
    record(gengar, 0, "SELL", 102.0)
    # HOLD days count in the base rates only
    record(gengar, 1, "HOLD", 100.0)
    record(gengar, 2, "HOLD", 150.0)
    # not graded yet, or ungradable: never counted
    record(mew, 2, "BUY", None, graded=False)
    record(gengar, 3, "SELL", None)
    return world
