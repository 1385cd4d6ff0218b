from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipelines.data import load_price_frame
from pipelines.evaluation import METRIC_KEYS, walk_forward_backtest
from pipelines.training import ml_threads


class Command(BaseCommand):
    help = "Walk-forward evaluation of the model and the baselines on the prices in the DB."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--horizon", type=int, default=settings.POKEWATCH_HORIZON_DAYS)
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        horizon = options["horizon"]
        if not 1 <= horizon <= 90:
            raise CommandError(f"--horizon must be between 1 and 90 days, got {horizon}")
        prices = load_price_frame()
        if prices.empty:
            raise CommandError("no prices in the database: import or collect some first")
        with ml_threads():
            result = walk_forward_backtest(
                prices,
                horizon=horizon,
                buy_threshold=settings.POKEWATCH_BUY_THRESHOLD,
                sell_threshold=settings.POKEWATCH_SELL_THRESHOLD,
            )
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            f"walk-forward backtest, horizon {result['horizon']} days, first cut {result['cut']}, "
            f"{prices['card_id'].nunique()} cards, {len(prices):,} prices"
        )
        header = f"{'estimator':<18}" + "".join(f"{k:>15}" for k in METRIC_KEYS)
        self.stdout.write(header)
        for name, metrics in result["estimators"].items():
            cells = "".join(f"{_fmt(metrics.get(k)):>15}" for k in METRIC_KEYS)
            self.stdout.write(f"{name:<18}{cells}")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}"
