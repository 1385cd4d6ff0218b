from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from pipelines.data import load_price_frame
from pipelines.evaluation import walk_forward_backtest
from pipelines.metrics import ACCURACY_KEYS, BASE_KEYS, SIGNAL_KEYS
from pipelines.signals import RULES, SignalConfig
from pipelines.training import ml_threads
from pokewatch_site.commands import PokeWatchCommand


class Command(PokeWatchCommand):
    help = "Walk-forward evaluation of the model and the baselines on the prices in the DB."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--horizon",
            type=int,
            default=settings.POKEWATCH_HORIZON_DAYS,
            help="days H of the fair value (the median of the next H days), 1 to 90 "
            f"(default: POKEWATCH_HORIZON_DAYS, {settings.POKEWATCH_HORIZON_DAYS})",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        horizon = options["horizon"]
        if not 1 <= horizon <= 90:
            raise CommandError(f"--horizon must be between 1 and 90 days, got {horizon}")
        prices = load_price_frame()
        if prices.empty:
            raise CommandError("no prices in the database: import or collect some first")
        if not options["json"]:
            self.stdout.write(
                f"walk-forward backtest, horizon {horizon} days: "
                f"{prices['card_id'].nunique()} cards, {len(prices):,} prices "
                "(a minute or two on a few hundred thousand prices)…"
            )
        with ml_threads():
            result = walk_forward_backtest(
                prices, horizon=horizon, signal=SignalConfig.from_settings()
            )
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self._report(result)

    def _report(self, result: dict[str, Any]) -> None:
        estimators = result["estimators"]
        self.stdout.write(
            f"first cut {result['cut']}; default signal rule: {result['signal_rule']}\n"
        )
        self._table("accuracy and band", estimators, ACCURACY_KEYS)
        for rule in RULES:
            by_rule = {name: block["rules"][rule] for name, block in estimators.items()}
            self._table(f"signals, rule '{rule}'", by_rule, SIGNAL_KEYS)
        base = result["base"]
        self.stdout.write(
            "base rates over all scored card-days: "
            + ", ".join(f"{k} {_fmt(base.get(k))}" for k in BASE_KEYS)
        )

    def _table(self, title: str, blocks: dict[str, dict[str, Any]], keys: tuple[str, ...]) -> None:
        self.stdout.write(title)
        width = max(len(k) for k in keys) + 2
        self.stdout.write(f"{'':<18}" + "".join(f"{k:>{width}}" for k in keys))
        for name, metrics in blocks.items():
            cells = "".join(f"{_fmt(metrics.get(k)):>{width}}" for k in keys)
            self.stdout.write(f"{name:<18}{cells}")
        self.stdout.write("")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}"
