"""State metrics of the prices side, read at scrape time (pokewatch_site.metrics).

Each scrape costs two indexed queries: the freshness rows (one per source) and the
champion's signals of its newest day (the (model_version, date) index).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Max
from prometheus_client.core import GaugeMetricFamily, Metric

from pokewatch_site.metrics import seconds_since
from prices.models import Prediction, SourceFreshness


class PricesCollector:
    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "pokewatch_newest_price_age_seconds",
            "Seconds since each source last brought a new or changed price",
            labels=["source"],
        )
        for freshness in SourceFreshness.objects.all():
            age.add_metric([freshness.source], seconds_since(freshness.last_ingested_at))
        yield age

        signals = GaugeMetricFamily(
            "pokewatch_signals_published_today",
            "The champion's signals of the newest day it scored, by signal",
            labels=["signal"],
        )
        counts = dict.fromkeys(Prediction.Signal.values, 0)
        champion_predictions = Prediction.objects.filter(model_version__is_champion=True)
        newest = champion_predictions.aggregate(newest=Max("date"))["newest"]
        if newest is not None:
            for row in (
                champion_predictions.filter(date=newest)
                .values("signal")
                .annotate(n=Count("id"))
                .order_by()
            ):
                counts[row["signal"]] = row["n"]
        for signal, n in counts.items():
            signals.add_metric([signal], n)
        yield signals
