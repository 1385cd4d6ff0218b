"""The published world of the API tests (the ``world`` fixture in tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pipelines.models import ModelVersion
from prices.models import Card

DAYS = 10
START = date(2026, 5, 1)
LAST = START + timedelta(days=DAYS - 1)


@dataclass
class World:
    cards: list[Card]
    champion: ModelVersion
