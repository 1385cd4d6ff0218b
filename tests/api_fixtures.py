"""A small published world for the API tests: three cards, prices and a champion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import pytest
from django.test import Client

from pipelines.models import ModelVersion
from pipelines.publishing import publish
from prices.models import Card
from tests.pipeline_fixtures import version

DAYS = 10
START = date(2026, 5, 1)
LAST = START + timedelta(days=DAYS - 1)


@dataclass
class World:
    cards: list[Card]
    champion: ModelVersion


@pytest.fixture
def world(make_card, make_prices) -> World:
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
    champion = version("model", registered_name="pokewatch-fair-value", registered_version="3")
    publish(champion, pd.DataFrame(rows))
    return World(cards, champion)


@pytest.fixture
def api(valid_key) -> Client:
    """A client that sends the valid key on every request."""
    return Client(HTTP_X_API_KEY=valid_key.raw)
