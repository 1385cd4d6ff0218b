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


@pytest.fixture
def make_drift_report(db):
    """Drift reports straight to the table: vol_h drifted, the other columns not."""
    from datetime import date

    from pipelines.drift import drift_columns
    from pipelines.models import DriftReport

    def make(kind: str = "training", **fields: object) -> DriftReport:
        features = {name: {"psi": 0.01, "ks": 0.02, "drifted": False} for name in drift_columns()}
        features["vol_h"] = {"psi": 0.35, "ks": 0.21, "drifted": True}
        values: dict[str, object] = {
            "kind": kind,
            "reference_start": date(2025, 4, 22),
            "reference_end": date(2026, 6, 30),
            "current_start": date(2026, 8, 5),
            "current_end": date(2026, 8, 18),
            "reference_rows": 1000,
            "current_rows": 84,
            "reference_source": "training sample",
            "threshold": 0.2,
            "features": features,
            "drifted_features": ["vol_h"],
            "drifted_count": 1,
        }
        values.update(fields)
        return DriftReport.objects.create(**values)

    return make
