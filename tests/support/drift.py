"""Synthetic feature frames for the drift tests: every compared column drawn i.i.d. from a
distribution shaped like the real feature's (returns with missing values at short
histories, day gaps, shares of observed days, a capped history length)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.drift import drift_columns


def feature_frame(rows: int, seed: int, *, missing: float = 0.1) -> pd.DataFrame:
    """``rows`` card-days of every drift column (the model's features and the prediction)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for name in drift_columns():
        if name.startswith("ret_"):
            values = rng.normal(0.0, 0.05, rows)
            values[rng.random(rows) < missing] = np.nan  # a return needs the full lag
        elif name.startswith("vol_"):
            values = rng.lognormal(-3.5, 0.5, rows)
        elif name == "gap_prev":
            values = rng.choice([1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 7.0], rows)
        elif name.startswith("obs_frac"):
            values = np.minimum(1.0, rng.beta(8, 1, rows) + 0.05)
        elif name == "history_days":
            values = np.minimum(rng.integers(0, 400, rows), 120).astype(float)
        else:  # dev_* and the prediction: log distances
            values = rng.normal(0.0, 0.03, rows)
        columns[name] = values.astype(np.float32)
    return pd.DataFrame(columns)


def shifted(frame: pd.DataFrame, column: str, by_sd: float = 1.0) -> pd.DataFrame:
    """``frame`` with ``column`` moved by ``by_sd`` of its standard deviation."""
    out = frame.copy()
    out[column] = out[column] + by_sd * float(np.nanstd(out[column]))
    return out
