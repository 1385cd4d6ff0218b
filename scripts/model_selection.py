"""How the model's settings were chosen: walk-forward validation *before* the first cut.

    .venv/bin/python scripts/model_selection.py            # H = 30 (and --horizon 7)

The reported backtest (``manage.py backtest``) scores the last 30 % of the bundled
history, from its first cut (2026-03-27) on. Nothing here looks at those days: the prices
are cut at that date, and the same walk-forward protocol runs on the days whose target is
known before it (t + H < cut): 3 folds, the last 30 % of those days scored. Each variant
changes one decision of the final configuration; the table shows what that decision is
worth on data the reported figures never see. ``--leave-cards-out`` scores each product
with a model that never saw it (3 groups). Results are in docs/model.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.estimators import FairValueEstimator, default_estimators  # noqa: E402
from pipelines.evaluation import (  # noqa: E402
    backtest_feature_frame,
    leave_cards_out_feature_frame,
)
from pipelines.features import (  # noqa: E402
    CARD_FEATURE_COLUMNS,
    MARKET_COLUMNS,
    TARGET_COLUMN,
    build_features,
    build_target,
)

DEMO = ROOT / "config" / "demo" / "tcgplayer_market_prices_dev.csv"
FIRST_CUT = "2026-03-27"  # the reported backtest's first cut on the bundled history
SHORT = {"ret_7", "ret_14", "dev_mean_7", "dev_mean_14", "vol_7"}

VARIANTS: dict[str, dict[str, Any]] = {
    "final": {},
    "with market features": {"features": tuple(CARD_FEATURE_COLUMNS + MARKET_COLUMNS)},
    "no short windows": {"features": tuple(c for c in CARD_FEATURE_COLUMNS if c not in SHORT)},
    "raw quantile band": {"calibration_days": 0},
    "calibration block 60 d": {"calibration_days": 60},
    "no shrink (1.0)": {"shrink": 1.0},
    "shrink 0.5": {"shrink": 0.5},
    "bigger leaves (500)": {"min_samples_leaf": 500},
}
COLUMNS = (
    ("MAPE", lambda m, b: m["mape"]),
    ("LP MAPE", lambda m, b: b["last_price"]["mape"]),
    ("band in", lambda m, b: m["band_coverage"]),
    ("below", lambda m, b: m["band_below"]),
    ("above", lambda m, b: m["band_above"]),
    ("BUY %", lambda m, b: m["rules"]["band"]["buy_n"] / m["n"]),
    ("BUY hit", lambda m, b: m["rules"]["band"]["buy_hit_rate"]),
    ("BUY ret", lambda m, b: m["rules"]["band"]["buy_mean_return"]),
    ("SELL n", lambda m, b: m["rules"]["band"]["sell_n"]),
    ("SELL hit", lambda m, b: m["rules"]["band"]["sell_hit_rate"]),
    ("dev sig %", lambda m, b: m["rules"]["deviation"]["signal_rate"]),
)


def factory(horizon: int, params: dict[str, Any]) -> Callable[[], dict[str, FairValueEstimator]]:
    return lambda: default_estimators(horizon=horizon, **params)


def cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--leave-cards-out", action="store_true")
    args = parser.parse_args()
    prices = pd.read_csv(DEMO)
    cut = pd.Timestamp(FIRST_CUT)
    before = prices[pd.to_datetime(prices["date"]) < cut]
    # Days whose H-day target ends before the cut: the only ones that can be scored.
    # With the market features, so that the variant using them can be tried.
    frame = build_features(before, args.horizon, market=True)
    frame[TARGET_COLUMN] = build_target(before, args.horizon).to_numpy()
    known = frame[frame["date"] + pd.Timedelta(days=args.horizon) < cut]
    run = leave_cards_out_feature_frame if args.leave_cards_out else backtest_feature_frame

    header = f"{'variant':<24}" + "".join(f"{name:>10}" for name, _ in COLUMNS)
    shown = False
    for name, params in VARIANTS.items():
        result = run(known, horizon=args.horizon, estimators=factory(args.horizon, params))
        if not shown:
            base = result["base"]
            print(
                f"pre-cut validation, H = {args.horizon}, first inner cut {result['cut']}, "
                f"{base['n']:,} scored card-days; base: mean return "
                f"{base['mean_return']:.4f}, up rate {base['up_rate']:.3f}"
                + (" (leave-cards-out)" if args.leave_cards_out else "")
            )
            print(header)
            shown = True
        model, everything = result["estimators"]["model"], result["estimators"]
        print(f"{name:<24}" + "".join(f"{cell(get(model, everything)):>10}" for _, get in COLUMNS))


if __name__ == "__main__":
    main()
