"""Predictions as the pipeline publishes them, and metrics compared without float noise.

Model versions come from the ``make_version`` fixture (tests/conftest.py).
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd


def prediction_frame(
    card_ids: list[str], days: int, start: date = date(2026, 1, 1)
) -> pd.DataFrame:
    rows = [
        {
            "card_id": card_id,
            "date": pd.Timestamp(start + timedelta(days=i)),
            "market_price": 10.0 + i,
            "fair_price": 11.0 + i,
            "deviation": -1 / (11.0 + i),
            "signal": "HOLD",
        }
        for card_id in card_ids
        for i in range(days)
    ]
    return pd.DataFrame(rows)


def rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 12)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value
