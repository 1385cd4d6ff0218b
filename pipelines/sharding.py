"""The training pipeline over shards of cards: memory that does not grow with the catalog.

Every feature of a card-day comes from that card's own prices (docs/model.md), so the
work splits by card. The active cards are cut into shards of consecutive primary keys
(``POKEWATCH_SHARD_CARDS`` each; a shard's prices are one range scan of the (card, date,
source) index), and the pipeline passes over them three times, each shard loading its
own prices and building its own features:

1. **sample**: a deterministic sample of the rows with a target (kept when a hash of the
   card and the day falls under a rate that makes ~1M rows over the whole catalog) and
   the days seen; the model, the baselines' bands and the backtest's fold models are
   fitted on that sample, in the orchestrating process;
2. **evaluate**: the walk-forward tallies of the shard's rows with the fold models
   (``pipelines.metrics``); they add up to exactly the one-pass backtest;
3. **serve**: the winner's predictions of the serving window, written for the new
   version (invisible until it is made the champion, in one transaction, at publish).

Shards run in this process one after the other by default, or as Celery tasks
(``POKEWATCH_SHARDS_ON_CELERY``) on the workers of ``POKEWATCH_SHARD_QUEUE``: the inputs
and outputs travel through :class:`~pipelines.models.ShardTask` rows, so adding workers
shortens a run. The peak memory is one shard's plus the sample's, whatever the catalog.
"""

from __future__ import annotations

import logging
import os
import pickle  # nosec B403: only our own rows, written by this module
import resource
import socket
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from pipelines.data import load_price_frame
from pipelines.estimators import FairValueEstimator, predictions_frame
from pipelines.evaluation import TRAIN_ROWS_CAP, FoldModels, tally_folds
from pipelines.features import TARGET_COLUMN, build_features, build_target
from pipelines.metrics import Tally
from pipelines.models import ModelVersion, ShardTask
from pipelines.progress import release_memory
from pipelines.signals import SignalConfig
from prices.models import Card, PricePoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    index: int
    first_pk: int
    last_pk: int
    cards: int

    @property
    def label(self) -> str:
        return f"shard {self.index} (cards {self.first_pk}…{self.last_pk})"


@dataclass(frozen=True)
class Plan:
    shards: list[Shard]
    prices: int
    sample_rate: float
    last_day: date | None


def make_plan(cards_per_shard: int | None = None, sample_rows: int = TRAIN_ROWS_CAP) -> Plan:
    """The shards of the active cards, and the sampling rate that gives ~``sample_rows``."""
    size = max(int(cards_per_shard or settings.POKEWATCH_SHARD_CARDS), 1)
    active = Card.objects.filter(active=True)
    pks = list(active.order_by("pk").values_list("pk", flat=True))
    shards = [
        Shard(i, chunk[0], chunk[-1], len(chunk))
        for i, chunk in enumerate(pks[start : start + size] for start in range(0, len(pks), size))
    ]
    prices = PricePoint.objects.filter(card__active=True).count()
    rate = min(1.0, sample_rows / prices) if prices else 1.0
    last = active.aggregate(last=Max("latest_price_date"))["last"]
    return Plan(shards, prices, rate, last)


def shard_frame(
    shard: Shard, horizon: int, *, as_of: date | None, start: date | None = None
) -> pd.DataFrame:
    """The feature frame of one shard's cards, from ``start`` on, with its target as of
    the whole catalog's last day (not the shard's: the same rows whatever the sharding)."""
    prices = load_price_frame(start=start, card_pk_range=(shard.first_pk, shard.last_pk))
    frame = build_features(prices, horizon)
    frame[TARGET_COLUMN] = build_target(prices, horizon, as_of=as_of).to_numpy()
    return frame


def sample_mask(frame: pd.DataFrame, rate: float) -> np.ndarray:
    """Rows with a target whose (card, day) hash falls under ``rate``: the same rows
    whatever the sharding, the run or the machine."""
    known = frame[TARGET_COLUMN].notna().to_numpy()
    if rate >= 1.0:
        return known
    card = frame["card_id"].astype("category")
    crc = np.array([zlib.crc32(str(c).encode()) for c in card.cat.categories], dtype=np.uint64)
    day = frame["date"].to_numpy().astype("datetime64[D]").astype(np.int64).astype(np.uint64)
    mixed = (crc[card.cat.codes.to_numpy()] * np.uint64(2654435761) + day * np.uint64(40503)) % (
        np.uint64(1) << np.uint64(32)
    )
    return known & (mixed.astype(np.float64) / 2.0**32 < rate)


# --- the three phases: plain functions of a shard and an input ----------------------------


def phase_sample(
    shard: Shard, *, horizon: int, rate: float, as_of: date | None
) -> tuple[pd.DataFrame, list[date]]:
    frame = shard_frame(shard, horizon, as_of=as_of)
    days = sorted(pd.to_datetime(frame["date"].unique()).date)
    return frame[sample_mask(frame, rate)].reset_index(drop=True), days


def phase_evaluate(
    shard: Shard,
    *,
    horizon: int,
    cuts: list[pd.Timestamp],
    models: FoldModels,
    config: SignalConfig,
    as_of: date | None,
) -> tuple[dict[str, Tally], Tally]:
    return tally_folds(shard_frame(shard, horizon, as_of=as_of), cuts, models, config)


def phase_serve(
    shard: Shard,
    *,
    version_id: int,
    estimator: FairValueEstimator,
    config: SignalConfig,
    horizon: int,
    start: date,
) -> int:
    """Write the version's predictions of the shard's prices dated ``start`` on."""
    from pipelines.publishing import write_predictions
    from pipelines.scoring import lookback_days

    begin = start - timedelta(days=lookback_days(horizon))
    frame = shard_frame(shard, horizon, as_of=None, start=begin)
    frame = frame[frame["date"] >= pd.Timestamp(start)]
    written = 0
    version = ModelVersion.objects.get(pk=version_id)
    with transaction.atomic():
        for first in range(0, len(frame), SERVING_BLOCK_ROWS):
            block = frame.iloc[first : first + SERVING_BLOCK_ROWS]
            predictions = predictions_frame(block, estimator.predict_band(block), config)
            usable = predictions[np.isfinite(predictions["fair_price"])]
            written += write_predictions(version, usable[usable["fair_price"] > 0])
    return written


SERVING_BLOCK_ROWS = 500_000
PHASES: dict[str, Callable[..., Any]] = {
    "sample": phase_sample,
    "evaluate": phase_evaluate,
    "serve": phase_serve,
}


# --- running a phase over every shard ---------------------------------------------------


def run_phase(
    phase: str,
    shards: Sequence[Shard],
    *,
    run_id: int | None = None,
    on_shard: Callable[[str], None] | None = None,
    **payload: Any,
) -> list[Any]:
    """The results of ``phase`` on every shard, in shard order: here, one after the other,
    or on the Celery workers of the shard queue (``POKEWATCH_SHARDS_ON_CELERY``)."""
    if settings.POKEWATCH_SHARDS_ON_CELERY and shards:
        return _on_celery(phase, shards, run_id, on_shard, payload)
    results = []
    for shard in shards:
        started = time.perf_counter()
        results.append(PHASES[phase](shard, **payload))
        release_memory()
        if on_shard:
            on_shard(f"  {phase} {shard.label}: {time.perf_counter() - started:.1f} s")
    return results


def _on_celery(
    phase: str,
    shards: Sequence[Shard],
    run_id: int | None,
    on_shard: Callable[[str], None] | None,
    payload: dict[str, Any],
) -> list[Any]:
    from pipelines.tasks import run_shard

    blob = _dump(payload)
    tasks = ShardTask.objects.bulk_create(
        ShardTask(
            run_id=run_id,
            phase=phase,
            index=s.index,
            first_card_pk=s.first_pk,
            last_card_pk=s.last_pk,
            payload=blob,
        )
        for s in shards
    )
    ids = [t.pk for t in tasks]
    queue = settings.POKEWATCH_SHARD_QUEUE
    for pk in ids:
        run_shard.apply_async(args=[pk], queue=queue)
    try:
        return _wait(ids, phase, on_shard)
    finally:
        # Inputs and outputs are no longer needed once read: kept, a run's training sample
        # alone would add ~85 MB a night at the catalog's size (docs/scaling.md). The row
        # stays: its status, worker, seconds and peak memory are the run's record.
        ShardTask.objects.filter(pk__in=ids).update(payload=b"", result=None)


def _wait(ids: list[int], phase: str, on_shard: Callable[[str], None] | None) -> list[Any]:
    started = time.monotonic()
    deadline = started + settings.POKEWATCH_TRAINING_SOFT_LIMIT
    pickup = started + settings.POKEWATCH_SHARD_PICKUP_SECONDS
    reported: set[int] = set()
    while True:
        rows = {t.pk: t for t in ShardTask.objects.filter(pk__in=ids).defer("payload", "result")}
        failed = [t for t in rows.values() if t.status == ShardTask.Status.FAILED]
        if failed:
            raise RuntimeError(f"{phase} {failed[0]} failed: {failed[0].error}")
        for task in rows.values():
            if task.status == ShardTask.Status.DONE and task.pk not in reported and on_shard:
                reported.add(task.pk)
                on_shard(
                    f"  {phase} shard {task.index}: {task.seconds:.1f} s on {task.worker} "
                    f"(peak {task.peak_rss_mb:,.0f} MB)"
                )
        if all(t.status == ShardTask.Status.DONE for t in rows.values()):
            break
        now = time.monotonic()
        if now > pickup and all(t.status == ShardTask.Status.QUEUED for t in rows.values()):
            raise RuntimeError(
                f"no worker took a {phase} shard within {settings.POKEWATCH_SHARD_PICKUP_SECONDS}"
                f" s: start a Celery worker on the queue {settings.POKEWATCH_SHARD_QUEUE!r}"
            )
        if now > deadline:
            raise RuntimeError(f"the {phase} shards did not finish within the time limit")
        time.sleep(0.5)
    blobs = dict(ShardTask.objects.filter(pk__in=ids).values_list("pk", "result"))
    return [_load(blobs[pk]) for pk in ids]


def execute_shard_task(task_id: int) -> None:
    """What a shard worker does (``pipelines.tasks.run_shard``): run one ShardTask."""
    claimed = ShardTask.objects.filter(pk=task_id, status=ShardTask.Status.QUEUED).update(
        status=ShardTask.Status.RUNNING, worker=f"{socket.gethostname()}:{os.getpid()}"
    )
    if not claimed:
        # Delivered again while marked running: the worker that took it died (acks_late).
        ShardTask.objects.filter(pk=task_id, status=ShardTask.Status.RUNNING).update(
            status=ShardTask.Status.FAILED, error="the worker running this shard died"
        )
        return
    task = ShardTask.objects.get(pk=task_id)
    shard = Shard(task.index, task.first_card_pk, task.last_card_pk, 0)
    started = time.perf_counter()
    try:
        payload = _load(task.payload)
        result = PHASES[task.phase](shard, **payload)
    except Exception as exc:
        logger.exception("shard task %s failed", task_id)
        ShardTask.objects.filter(pk=task_id).update(
            status=ShardTask.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:10_000]
        )
        raise
    finally:
        release_memory()
    ShardTask.objects.filter(pk=task_id).update(
        status=ShardTask.Status.DONE,
        result=_dump(result),
        seconds=round(time.perf_counter() - started, 3),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def _dump(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _load(blob: bytes | memoryview | None) -> Any:
    """Unpickle a ShardTask's input or output: written by this module (the orchestrating
    step or a shard worker of the same deployment) to our own database, never by a user."""
    if blob is None:
        raise RuntimeError("a shard task has no result")
    return pickle.loads(bytes(blob))  # noqa: S301  # nosec B301
