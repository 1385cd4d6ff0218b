"""The track record: the signal served for each card and day, graded once its horizon passed.

DESIGN.md section 4. Three services, called by the publishing and scoring services:

- :func:`record_served` copies a version's predictions of the days nobody served before
  into :class:`prices.models.SignalRecord`, in the transaction that writes them. A later
  champion recomputes the whole serving window on data it was trained on; its values
  for days already served never replace the ones that were served. Only out-of-sample
  days are recorded (``date > data_end - horizon``: the version never trained on their
  target), so the first champion's in-sample history is never graded.
- :func:`grade` fills in the realised median of every record whose horizon has passed,
  with the same definition as the training target (``features.build_target``).
- records older than the track-record window are dropped by :func:`grade`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from pipelines.data import load_price_frame
from pipelines.features import build_target, clean_prices
from pipelines.models import ModelVersion
from pipelines.signals import SignalConfig, outcomes
from prices import caching
from prices import predictions as prediction_store
from prices.models import Card, SignalRecord

logger = logging.getLogger(__name__)


def record_served(version: ModelVersion, since: date | None = None) -> int:
    """Record ``version``'s predictions (dated >= ``since``) of days not yet served.

    Only out-of-sample days; the copy itself (one ``INSERT … SELECT … ON CONFLICT DO
    NOTHING``: the first prediction published for a (card, day) stays) is the prices
    app's, which keeps the track record. Returns the rows added.
    """
    config = SignalConfig.from_settings(version.signal_rule)
    first = since
    if version.data_end is not None:
        out_of_sample = version.data_end - timedelta(days=version.horizon - 1)
        first = max(first, out_of_sample) if first else out_of_sample
    added = prediction_store.record_served(
        version.pk,
        horizon=version.horizon,
        signal_rule=version.signal_rule,
        buy_threshold=config.buy_threshold,
        sell_threshold=config.sell_threshold,
        published_at=timezone.now(),
        since=first,
    )
    if added:
        logger.info("track record: %d served prediction(s) of %s recorded", added, version)
    return added


@dataclass
class GradeResult:
    graded: int = 0
    pending: int = 0
    pruned: int = 0

    def summary(self) -> str:
        return (
            f"track record: {self.graded} signal(s) graded, {self.pending} waiting for their "
            f"horizon, {self.pruned} older than the window dropped"
        )


def grade(today: date | None = None) -> GradeResult:
    """Grade every record whose horizon has passed; drop those outside the window.

    A record of day t with horizon H is graded once prices have arrived up to t + H (for
    any card: the collection is one day for all). Its realised median is the median of
    the card's prices on t+1 … t+H, the training target's definition (NULL when fewer than
    half of those days have a price: too gappy to judge, never counted).
    """
    today = today or timezone.localdate()
    result = GradeResult()
    cutoff = today - timedelta(days=settings.POKEWATCH_TRACK_RECORD_DAYS)
    result.pruned = prediction_store.drop_records_before(cutoff)
    pending = SignalRecord.objects.filter(graded_at__isnull=True)
    latest = Card.objects.aggregate(latest=Max("latest_price_date"))["latest"]
    if latest is None:
        result.pending = pending.count()
        return result
    for horizon in pending.order_by().values_list("horizon", flat=True).distinct():
        due = list(
            pending.filter(horizon=horizon, date__lte=latest - timedelta(days=horizon))
            .only("pk", "card__card_id", "date", "market_price", "buy_threshold", "sell_threshold")
            .select_related("card")
        )
        if due:
            result.graded += _grade(due, horizon, latest)
    result.pending = pending.count()
    if result.graded or result.pruned:
        with transaction.atomic():
            caching.bump_generation()  # cached track-record answers are out of date
        logger.info(result.summary())
    return result


def _grade(due: list[SignalRecord], horizon: int, latest: date) -> int:
    """Fill in the outcome of ``due`` records (one horizon, window over by ``latest``)."""
    cards = sorted({r.card.card_id for r in due})
    prices = load_price_frame(start=min(r.date for r in due), card_ids=cards)
    observed = clean_prices(prices)[["card_id", "date"]]
    observed["realised"] = build_target(prices, horizon, as_of=latest).to_numpy()
    realised = observed.set_index(["card_id", "date"])["realised"]
    now = timezone.now()
    graded: list[SignalRecord] = []
    for record in due:
        key = (record.card.card_id, pd.Timestamp(record.date))
        if key not in realised.index:
            continue  # the record's own price is gone (card deactivated or price deleted)
        value = float(realised.loc[key])
        record.graded_at = now
        if np.isfinite(value):
            market = float(record.market_price)
            config = SignalConfig(
                buy_threshold=record.buy_threshold, sell_threshold=record.sell_threshold
            )
            happened = outcomes([market], [value], config)
            record.realised_median = Decimal(f"{value:.2f}")
            record.realised_return = float(happened["ret"][0])
            record.rose, record.fell = bool(happened["rose"][0]), bool(happened["fell"][0])
        graded.append(record)
    prediction_store.save_grades(graded)
    return len(graded)
