"""Fixtures of the pipeline tests: the six-product slice of the demo history they train on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from prices.csv_import import import_price_file
from prices.models import Card
from tests.support.demo import DEMO_CARDS, DEMO_CSV, SLICE


@pytest.fixture
def demo_slice(db, tmp_path: Path) -> pd.DataFrame:
    """Six demo products, all but their last day imported; the last day is returned."""
    from prices.cards import import_cards_file

    import_cards_file(DEMO_CARDS)
    Card.objects.exclude(card_id__in=SLICE).update(active=False)
    demo = pd.read_csv(DEMO_CSV)
    demo = demo[demo["card_id"].isin(SLICE)]
    last_day = demo["date"].max()
    held_back = demo[demo["date"] == last_day]
    path = tmp_path / "slice.csv"
    demo[demo["date"] < last_day].to_csv(path, index=False)
    import_price_file(path, source="tcgplayer-demo")
    return held_back


@pytest.fixture
def loose_band_gate(settings) -> None:
    """Six products over the slice's short scored period give a noisy band coverage; the
    band check of the gate has tests of its own (tests/pipelines/test_gate.py)."""
    settings.POKEWATCH_GATE_BAND_COVERAGE_MIN = 0.5
    settings.POKEWATCH_GATE_BAND_COVERAGE_MAX = 0.95
