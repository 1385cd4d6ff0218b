"""Drift: how far the latest days' features and predictions moved from the training window.

Every model feature (``pipelines.features.FEATURE_COLUMNS``) and the prediction
(``pred_log_ratio`` = log(fair / market), what the model says about the coming median)
are compared between two samples of card-days:

- the **reference**: the training window. A training run uses its own training sample; a
  day's scoring rebuilds it from the database over the champion's data window
  (``ModelVersion.data_start`` … ``data_end``), the card-days that had a target then,
  as the training sample had. Both leave out the history's warm-up, its first 4H days,
  where the start of the data cuts every card's long windows short (:func:`warm_up_end`);
- the **current** window: the latest ``POKEWATCH_DRIFT_WINDOW_DAYS`` (14) days of prices.

Per column: the **population stability index** over 10 quantile bins of the reference
(plus one bin for missing values, so a change in how often a feature is NaN counts), an
epsilon for empty bins; and the **two-sample Kolmogorov-Smirnov statistic**
(``scipy.stats.ks_2samp``) of the finite values. A column whose PSI is above
``POKEWATCH_DRIFT_PSI_THRESHOLD`` (0.2) is *drifted*.

Cost does not grow with the catalog: each side is sampled to at most ``MAX_ROWS`` rows
with a fixed seed, and the windows read from the database load the prices of a
deterministic sample of cards (a hash of the card id) of at most ``LOAD_ROWS`` prices,
lookback included, a block of cards at a time.

Results are stored as :class:`~pipelines.models.DriftReport` rows (one per training run,
at most one per data day of scoring), logged to MLflow (``drift_psi_<column>``,
``drift_ks_<column>``, ``drift_features_drifted`` and ``drift.json``) and exported to
Prometheus by :class:`DriftCollector`.

This module is imported by the web processes for the collector: pandas, numpy and scipy
are imported inside the functions that need them, never at the top.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from pipelines.models import DriftReport, ModelVersion

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from prometheus_client.core import Metric

    from pipelines.scoring import ScoreResult

logger = logging.getLogger(__name__)

#: The prediction's column: log(fair price / market price).
PREDICTION_COLUMN = "pred_log_ratio"
#: Quantile bins of the reference (a bin for missing values comes on top).
BINS = 10
#: The share an empty bin counts as, so that the PSI stays finite.
EPSILON = 1e-4
#: Each side of a comparison is sampled down to this many rows (fixed seed).
MAX_ROWS = 200_000
#: A window read from the database loads at most about this many prices (lookback
#: included): cards are sampled by a hash of their id when the catalog is larger.
LOAD_ROWS = 2_000_000
#: Prices loaded (and featured) at once while reading a window.
BLOCK_ROWS = 500_000
SEED = 0


def drift_columns() -> list[str]:
    """What is compared: every model feature, then the prediction."""
    from pipelines.features import FEATURE_COLUMNS

    return [*FEATURE_COLUMNS, PREDICTION_COLUMN]


# --- pure functions on arrays and frames ----------------------------------------------------


def _floats(values: Any) -> np.ndarray:
    import numpy as np

    return np.asarray(values, dtype=np.float64).ravel()


def psi(
    reference: Any, current: Any, *, bins: int = BINS, epsilon: float = EPSILON
) -> float | None:
    """Population stability index of ``current`` against ``reference``.

    Bins: the reference's quantiles (``bins`` of them, fewer when values repeat: a value
    holding many rows is one bin), and one bin for missing (non-finite) values. Shares of
    an empty bin count as ``epsilon``. None when either side has no row.
    """
    import numpy as np

    ref, cur = _floats(reference), _floats(current)
    if not len(ref) or not len(cur):
        return None
    ref_ok, cur_ok = np.isfinite(ref), np.isfinite(cur)
    finite = ref[ref_ok]
    levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = np.unique(np.quantile(finite, levels)) if len(finite) else np.empty(0)

    def shares(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
        # side="left": bin i holds edges[i-1] < v <= edges[i]; the last bin v > edges[-1].
        counts = np.bincount(
            np.searchsorted(edges, values[ok], side="left"), minlength=len(edges) + 1
        )
        return np.append(counts, np.count_nonzero(~ok)) / len(values)

    expected = np.maximum(shares(ref, ref_ok), epsilon)
    actual = np.maximum(shares(cur, cur_ok), epsilon)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference: Any, current: Any) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic of the finite values (None if a side has none)."""
    import numpy as np
    from scipy.stats import ks_2samp

    ref, cur = _floats(reference), _floats(current)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if not len(ref) or not len(cur):
        return None
    # The statistic only: the asymptotic p-value is cheap, the exact one is not.
    return float(ks_2samp(ref, cur, method="asymp").statistic)


def bounded(frame: pd.DataFrame, max_rows: int = MAX_ROWS, seed: int = SEED) -> pd.DataFrame:
    """``frame``, or a seeded sample of ``max_rows`` of its rows when it is longer."""
    if len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).sort_index()


@dataclass
class DriftResult:
    """Per column: ``{"psi", "ks", "drifted"}``; the threshold and the rows compared."""

    features: dict[str, dict[str, Any]]
    threshold: float
    reference_rows: int
    current_rows: int

    @property
    def drifted(self) -> list[str]:
        return [name for name, values in self.features.items() if values["drifted"]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "drifted": self.drifted,
            "features": self.features,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Iterable[str] | None = None,
    *,
    threshold: float | None = None,
    max_rows: int = MAX_ROWS,
    seed: int = SEED,
) -> DriftResult:
    """PSI and KS of every column of ``current`` against ``reference``.

    ``columns``: by default the model features and the prediction, those present in both
    frames. Each side is first sampled to ``max_rows`` rows (``seed``). A column is
    drifted when its PSI is above ``threshold`` (``POKEWATCH_DRIFT_PSI_THRESHOLD``).
    """
    limit = settings.POKEWATCH_DRIFT_PSI_THRESHOLD if threshold is None else threshold
    if columns is None:
        columns = [c for c in drift_columns() if c in reference.columns and c in current.columns]
    reference, current = bounded(reference, max_rows, seed), bounded(current, max_rows, seed)
    features: dict[str, dict[str, Any]] = {}
    for column in columns:
        index = psi(reference[column], current[column])
        features[column] = {
            "psi": _rounded(index),
            "ks": _rounded(ks(reference[column], current[column])),
            "drifted": index is not None and index > limit,
        }
    return DriftResult(features, float(limit), len(reference), len(current))


def prediction_log_ratio(estimator: Any, frame: pd.DataFrame) -> np.ndarray:
    """log(fair / market) of ``estimator`` on a feature frame (NaN where it has none)."""
    import numpy as np

    from pipelines.training import ml_threads

    if frame.empty:
        return np.empty(0)
    with ml_threads():
        fair = np.asarray(estimator.predict_band(frame).fair, dtype=np.float64)
    market = frame["market_price"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(fair / market)
    ratio[~np.isfinite(ratio)] = np.nan
    return ratio


# --- windows read from the database ---------------------------------------------------------


def _card_hash(card_id: str) -> float:
    """A fixed number in [0, 1) per card: the same cards are sampled every day."""
    return zlib.crc32(card_id.encode()) / 2.0**32


def window_frame(
    start: date,
    end: date,
    *,
    horizon: int,
    estimator: Any = None,
    with_target: bool = False,
    max_rows: int = MAX_ROWS,
    load_rows: int = LOAD_ROWS,
    seed: int = SEED,
) -> pd.DataFrame:
    """The features (and the estimator's ``pred_log_ratio``) of the active cards' prices
    dated ``start`` … ``end``, each computed from the prices up to its day, exactly as the
    pipeline computes them (with the scoring lookback before ``start``).

    ``with_target``: only the card-days whose target was known on ``end`` (the rows a
    training run on prices up to ``end`` learned from). At most ``max_rows`` rows come
    back; the prices of a hash-sample of the cards are loaded when all of them would be
    more than ``load_rows`` prices.
    """
    import numpy as np
    import pandas as pd

    from pipelines.data import load_price_frame
    from pipelines.features import build_features, build_target
    from pipelines.scoring import lookback_days
    from prices.models import Card

    first = start - timedelta(days=lookback_days(horizon))
    span = (end - first).days + 1
    cards = list(
        Card.objects.filter(active=True, latest_price_date__gte=start)
        .order_by("pk")
        .values_list("pk", "card_id")
    )
    rate = min(1.0, load_rows / max(len(cards) * span, 1))
    chosen = [(pk, card_id) for pk, card_id in cards if _card_hash(card_id) < rate]
    # Keep each block's rows at a rate that makes about max_rows over the window.
    keep = min(1.0, max_rows / max(len(chosen) * ((end - start).days + 1), 1))
    rng = np.random.default_rng(seed)
    columns = [*drift_columns(), "card_id", "date", "market_price"]
    per_block = max(1, BLOCK_ROWS // span)
    frames = []
    for at in range(0, len(chosen), per_block):
        block = chosen[at : at + per_block]
        prices = load_price_frame(
            start=first,
            end=end,
            card_ids=[card_id for _, card_id in block],
            card_pk_range=(block[0][0], block[-1][0]),
        )
        frame = build_features(prices, horizon)
        mask = (frame["date"] >= pd.Timestamp(start)).to_numpy()
        if with_target:
            mask &= build_target(prices, horizon, as_of=end).notna().to_numpy()
        if keep < 1.0:
            mask &= rng.random(len(frame)) < keep
        frame = frame[mask].reset_index(drop=True)
        del prices
        if estimator is not None:
            frame[PREDICTION_COLUMN] = prediction_log_ratio(estimator, frame)
        frames.append(frame[[c for c in columns if c in frame.columns]])
    if not frames:
        return pd.DataFrame(columns=columns)
    return bounded(pd.concat(frames, ignore_index=True), max_rows, seed)


def warm_up_end(first_day: date, horizon: int) -> date:
    """The first day after the price history's warm-up: its first 4H days, where every
    card's long windows are cut short by the start of the data (a 4H return is missing,
    ``history_days`` is short), whatever the card's real age. The reference leaves them
    out: the latest days, long after the start of the data, would otherwise always differ
    from them, and the features made of long windows would never stop drifting."""
    return first_day + timedelta(days=4 * max(int(horizon), 1))


def _window(end: date) -> tuple[date, date]:
    return end - timedelta(days=settings.POKEWATCH_DRIFT_WINDOW_DAYS - 1), end


def _dates(frame: pd.DataFrame) -> tuple[date | None, date | None]:
    if frame.empty:
        return None, None
    return frame["date"].min().date(), frame["date"].max().date()


# --- the two reports ----------------------------------------------------------------------


def training_report(
    *,
    run_id: int | None,
    sample: pd.DataFrame,
    estimator: Any,
    horizon: int,
    last_day: date | None,
    version: ModelVersion | None = None,
    mlflow_run_id: str = "",
) -> DriftReport:
    """A training run's report: its training sample and the in-sample predictions of the
    estimator it logged, against the latest days' features and that estimator's
    predictions of them. Logged to the run's MLflow run when it has one."""
    import pandas as pd

    started = time.perf_counter()
    first = sample["date"].min().date()
    after_warm_up = sample[sample["date"] >= pd.Timestamp(warm_up_end(first, horizon))]
    reference = bounded(after_warm_up if len(after_warm_up) else sample).copy()
    reference[PREDICTION_COLUMN] = prediction_log_ratio(estimator, reference)
    if last_day is None:
        last_day = sample["date"].max().date()
    current_start, current_end = _window(last_day)
    current = window_frame(current_start, current_end, horizon=horizon, estimator=estimator)
    result = compare(reference, current)
    reference_start, reference_end = _dates(reference)
    report = DriftReport.objects.create(
        kind=DriftReport.Kind.TRAINING,
        training_run_id=run_id or None,
        model_version=version,
        reference_start=reference_start,
        reference_end=reference_end,
        current_start=current_start,
        current_end=current_end,
        reference_source="training sample",
        **_fields(result),
        seconds=round(time.perf_counter() - started, 3),
        mlflow_run_id=mlflow_run_id,
    )
    if mlflow_run_id:
        from pipelines import tracking

        tracking.log_drift(mlflow_run_id, report_payload(report), metrics_of(report))
    return report


def scoring_report(*, force: bool = True) -> DriftReport | None:
    """The champion's drift on the latest days against its training window.

    One report per data day (the newest price of the active cards): a later call that day
    recomputes it and replaces it; with ``force`` off, a report of that day by the same
    champion is kept as it is. None without a champion, a data window or prices.
    """
    champion = ModelVersion.objects.filter(is_champion=True).first()
    if champion is None:
        return None
    if champion.data_start is None or champion.data_end is None:
        logger.info("drift: %s has no data window to compare with; skipped", champion)
        return None
    from prices.models import Card

    last = Card.objects.filter(active=True).aggregate(last=Max("latest_price_date"))["last"]
    if last is None:
        return None
    existing = DriftReport.objects.filter(kind=DriftReport.Kind.SCORING, current_end=last).first()
    if existing is not None and existing.model_version_id == champion.pk and not force:
        return existing

    from pipelines.scoring import estimator_for

    started = time.perf_counter()
    estimator = estimator_for(champion)
    start = warm_up_end(champion.data_start, champion.horizon)
    if start > champion.data_end - timedelta(days=champion.horizon):
        start = champion.data_start  # too short a history to leave the warm-up out
    reference = window_frame(
        start,
        champion.data_end,
        horizon=champion.horizon,
        estimator=estimator,
        with_target=True,
    )
    current_start, current_end = _window(last)
    current = window_frame(
        current_start, current_end, horizon=champion.horizon, estimator=estimator
    )
    result = compare(reference, current)
    reference_start, reference_end = _dates(reference)
    fields = {
        "model_version": champion,
        "training_run": None,
        "computed_at": timezone.now(),
        "reference_start": reference_start,
        "reference_end": reference_end,
        "current_start": current_start,
        "reference_source": "database",
        **_fields(result),
        "seconds": round(time.perf_counter() - started, 3),
    }
    with transaction.atomic():
        report, _ = DriftReport.objects.update_or_create(
            kind=DriftReport.Kind.SCORING, current_end=current_end, defaults=fields
        )
    try:
        from pipelines import tracking

        run_id = tracking.log_drift_run(
            report.mlflow_run_id,
            report_payload(report),
            metrics_of(report),
            tags={
                "pokewatch.drift_kind": report.kind,
                "pokewatch.champion": champion.label,
                "pokewatch.model_version": champion.registered_version,
                "pokewatch.current_end": str(current_end),
            },
            name=f"drift-{current_end}",
        )
    except Exception:  # the report is in the database; MLflow can have it next time
        logger.warning("drift report %s was not logged to MLflow", report.pk, exc_info=True)
    else:
        if run_id != report.mlflow_run_id:
            DriftReport.objects.filter(pk=report.pk).update(mlflow_run_id=run_id)
            report.mlflow_run_id = run_id
    logger.info(
        "drift of %s…%s against %s: %d drifted (%s)",
        current_start,
        current_end,
        champion,
        report.drifted_count,
        ", ".join(report.drifted_features) or "none",
    )
    return report


def after_scoring(result: ScoreResult) -> DriftReport | None:
    """What scoring calls: the day's report, recomputed when scoring wrote something.

    Never raises: a failure is logged as a warning, and the scoring stands.
    """
    try:
        return scoring_report(force=bool(result.scored or result.replaced))
    except Exception:
        logger.warning("drift of the latest days could not be computed", exc_info=True)
        return None


def _fields(result: DriftResult) -> dict[str, Any]:
    return {
        "reference_rows": result.reference_rows,
        "current_rows": result.current_rows,
        "threshold": result.threshold,
        "features": result.features,
        "drifted_features": result.drifted,
        "drifted_count": len(result.drifted),
    }


def report_payload(report: DriftReport) -> dict[str, Any]:
    """``drift.json``: the report as MLflow keeps it."""
    return {
        "kind": report.kind,
        "computed_at": report.computed_at.isoformat(),
        "reference": {
            "start": str(report.reference_start),
            "end": str(report.reference_end),
            "rows": report.reference_rows,
            "source": report.reference_source,
        },
        "current": {
            "start": str(report.current_start),
            "end": str(report.current_end),
            "rows": report.current_rows,
        },
        "threshold": report.threshold,
        "drifted": report.drifted_features,
        "features": report.features,
    }


def metrics_of(report: DriftReport) -> dict[str, float]:
    """MLflow metrics: ``drift_psi_<column>``, ``drift_ks_<column>``, ``drift_features_drifted``."""
    metrics: dict[str, float] = {"drift_features_drifted": float(report.drifted_count)}
    for name, values in report.features.items():
        for key in ("psi", "ks"):
            if values.get(key) is not None:
                metrics[f"drift_{key}_{name}"] = float(values[key])
    return metrics


def latest_reports() -> list[DriftReport]:
    """The newest report of each kind (one query per kind)."""
    found = []
    for kind in DriftReport.Kind.values:
        report = (
            DriftReport.objects.filter(kind=kind)
            .only("kind", "computed_at", "features")
            .order_by("-computed_at")
            .first()
        )
        if report is not None:
            found.append(report)
    return found


# --- Prometheus -----------------------------------------------------------------------------


class DriftCollector:
    """The latest report of each kind as gauges, read from the database at each scrape.

    ``pokewatch_drift_psi``, ``pokewatch_drift_ks`` and ``pokewatch_drift_drifted`` (0/1)
    per ``feature`` and ``kind``; ``pokewatch_drift_features_drifted`` and
    ``pokewatch_drift_report_age_seconds`` per ``kind``; ``pokewatch_drift_threshold``.
    Two small queries; a database error propagates before anything is yielded.
    """

    def describe(self) -> Iterator[Metric]:
        """The families without samples: registering the collector queries nothing."""
        yield from self._families([])

    def collect(self) -> Iterator[Metric]:
        reports = latest_reports()  # first: an error leaves nothing half-yielded
        yield from self._families(reports)

    def _families(self, reports: list[DriftReport]) -> list[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        per_feature = ["feature", "kind"]
        psi_family = GaugeMetricFamily(
            "pokewatch_drift_psi",
            "Population stability index of a feature in the latest drift report",
            labels=per_feature,
        )
        ks_family = GaugeMetricFamily(
            "pokewatch_drift_ks",
            "Two-sample Kolmogorov-Smirnov statistic of a feature in the latest drift report",
            labels=per_feature,
        )
        drifted = GaugeMetricFamily(
            "pokewatch_drift_drifted",
            "1 if the feature's PSI is above the threshold in the latest drift report",
            labels=per_feature,
        )
        count = GaugeMetricFamily(
            "pokewatch_drift_features_drifted",
            "Drifted features (and prediction) in the latest drift report",
            labels=["kind"],
        )
        age = GaugeMetricFamily(
            "pokewatch_drift_report_age_seconds",
            "Seconds since the latest drift report was computed",
            labels=["kind"],
        )
        threshold = GaugeMetricFamily(
            "pokewatch_drift_threshold",
            "PSI above which a feature counts as drifted (POKEWATCH_DRIFT_PSI_THRESHOLD)",
            value=settings.POKEWATCH_DRIFT_PSI_THRESHOLD,
        )
        now = timezone.now()
        for report in reports:
            flagged = 0
            for feature, values in report.features.items():
                labels = [feature, report.kind]
                if values.get("psi") is not None:
                    psi_family.add_metric(labels, values["psi"])
                if values.get("ks") is not None:
                    ks_family.add_metric(labels, values["ks"])
                drifted.add_metric(labels, 1.0 if values.get("drifted") else 0.0)
                flagged += bool(values.get("drifted"))
            count.add_metric([report.kind], flagged)
            age.add_metric([report.kind], (now - report.computed_at).total_seconds())
        return [psi_family, ks_family, drifted, count, age, threshold]
