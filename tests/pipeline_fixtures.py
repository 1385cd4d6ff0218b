"""Factories for model versions and predictions shared by the pipeline tests."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from pipelines.models import ModelVersion


def version(estimator: str = "last_price", **fields: object) -> ModelVersion:
    values: dict[str, object] = {"registered_name": "test-model", "estimator": estimator}
    values.update(fields)
    return ModelVersion.objects.create(**values)


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
