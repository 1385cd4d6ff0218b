"""State metrics of the training side, read at scrape time (pokewatch_site.metrics).

Training runs and model versions are few (one run a night): a handful of small queries.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from pipelines.models import ModelVersion, TrainingRun
from pokewatch_site.metrics import seconds_since

#: Runs that ended with an outcome; queued, running and skipped runs don't break a streak.
FINISHED = (
    TrainingRun.Status.SUCCEEDED,
    TrainingRun.Status.REJECTED,
    TrainingRun.Status.FAILED,
)
#: How far back a streak of failures is counted.
STREAK_WINDOW = 20
CHAMPION_QUALITY = {
    "mape": "mean absolute percentage error of the fair value, in the backtest",
    "band_coverage": "share of realised prices inside the fair-value band, in the backtest",
    "signal_rate": "share of card-days with a BUY or SELL signal, in the backtest",
}


class TrainingCollector:
    def collect(self) -> Iterator[Metric]:
        yield from self._runs()
        yield from self._champion()

    def _runs(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "pokewatch_training_runs",
            "Training runs recorded, by status",
            labels=["status"],
        )
        counts = dict.fromkeys(TrainingRun.Status.values, 0)
        for row in TrainingRun.objects.values("status").annotate(n=Count("id")).order_by():
            counts[row["status"]] = row["n"]
        for status, n in counts.items():
            runs.add_metric([status], n)
        yield runs

        recent = TrainingRun.objects.filter(status__in=FINISHED).order_by("-created_at")
        streak = 0
        for status in recent.values_list("status", flat=True)[:STREAK_WINDOW]:
            if status != TrainingRun.Status.FAILED:
                break
            streak += 1
        yield GaugeMetricFamily(
            "pokewatch_training_consecutive_failures",
            "Failed training runs since the last one that did not fail",
            value=streak,
        )

        last = recent.first()
        steps = GaugeMetricFamily(
            "pokewatch_training_last_run_step_seconds",
            "Seconds each step of the last finished training run took",
            labels=["step"],
        )
        if last is not None:
            for step, seconds in sorted(last.step_timings.items()):
                steps.add_metric([step], float(seconds))
        yield steps
        if last is not None:
            yield GaugeMetricFamily(
                "pokewatch_training_last_run_cards_scored",
                "Cards the last finished training run scored on its newest day (0: not served)",
                value=last.cards_scored,
            )
            if last.finished_at is not None:
                yield GaugeMetricFamily(
                    "pokewatch_training_last_run_timestamp_seconds",
                    "When the last finished training run ended (Unix time)",
                    value=last.finished_at.timestamp(),
                )

    def _champion(self) -> Iterator[Metric]:
        champion = ModelVersion.objects.filter(is_champion=True).first()
        if champion is None:
            return
        info = GaugeMetricFamily(
            "pokewatch_champion_info",
            "The champion model version (always 1)",
            labels=["version", "estimator"],
        )
        info.add_metric([champion.label, champion.estimator], 1)
        yield info
        yield GaugeMetricFamily(
            "pokewatch_champion_age_seconds",
            "Seconds since the champion was promoted (trained, if never promoted)",
            value=seconds_since(champion.promoted_at or champion.trained_at),
        )
        for name, what in CHAMPION_QUALITY.items():
            value = champion.metrics.get(name)
            if isinstance(value, int | float):
                yield GaugeMetricFamily(
                    f"pokewatch_champion_{name}", f"The champion's {what}", value=value
                )
