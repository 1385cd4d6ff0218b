"""The writes of the model's output this app stores: ``Prediction`` and the track record
(``SignalRecord``).

Each model lives with the code that writes it. The pipelines app computes predictions,
decides which to serve and grades them; it writes them through these functions, inside its
own transaction (none opens one here), so a publish, a scoring run or a serve shard stays
all or nothing. Model versions are passed by primary key: prices import nothing of
pipelines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Exists, OuterRef

from prices.bulk import copy_lines
from prices.ingestion import card_pks
from prices.models import Prediction, PricePoint, SignalRecord

# --- predictions ---------------------------------------------------------------------------


def store_predictions(
    version_id: int,
    frame: pd.DataFrame,
    *,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Insert ``frame`` as the predictions of model version ``version_id``; the count.

    ``frame`` has a row per (card, date): ``card_id`` (the card's slug), ``date``,
    ``market_price``, ``fair_price``, ``fair_low`` and ``fair_high`` (optional: NULL
    without a band), ``deviation`` and ``signal``. A card that does not exist raises
    ``ValueError`` before anything is written. PostgreSQL: ``COPY``; elsewhere
    ``bulk_create`` in blocks.
    """
    if frame.empty:
        return 0
    pks = card_pks(frame["card_id"].unique().tolist())
    missing = set(frame["card_id"].unique()) - pks.keys()
    if missing:
        raise ValueError(f"predictions for unknown cards: {sorted(missing)[:5]}")
    table = _table(frame, pks, version_id)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_lines(
                cursor,
                Prediction._meta.db_table,
                list(table.columns),
                _tsv_chunks(table),
                progress=progress,
            )
    else:
        for start in range(0, len(table), 5000):
            block = table.iloc[start : start + 5000]
            block = block.astype(object).where(block.notna(), None)  # NaN -> NULL
            Prediction.objects.bulk_create(Prediction(**row) for row in block.to_dict("records"))
    return len(frame)


def delete_predictions(version_id: int) -> int:
    """Remove every prediction of model version ``version_id``; how many went."""
    deleted, _ = Prediction.objects.filter(model_version_id=version_id).delete()
    return deleted


def delete_stale_predictions(version_id: int, since: date) -> int:
    """Remove version ``version_id``'s predictions dated >= ``since`` whose market price is
    no longer a stored price of their card on their day: the price was corrected since
    (re-imported or collected again with another value). How many went; the scorer
    predicts those days again.

    A prediction keeps the market price it was computed from, so a stored price equal to
    it (of any source) means the prediction is still current. Active cards only: the
    scorer scores nothing else.
    """
    same_price = PricePoint.objects.filter(
        card=OuterRef("card"), date=OuterRef("date"), market_price=OuterRef("market_price")
    )
    stale = Prediction.objects.filter(
        model_version_id=version_id, date__gte=since, card__active=True
    ).exclude(Exists(same_price))
    deleted, _ = stale.delete()
    return deleted


def delete_other_predictions(keep_version_id: int) -> int:
    """Remove the predictions of every version but ``keep_version_id``; how many went."""
    deleted, _ = Prediction.objects.exclude(model_version_id=keep_version_id).delete()
    return deleted


def _table(frame: pd.DataFrame, pks: dict[str, int], version_pk: int) -> pd.DataFrame:
    """The rows as Prediction's columns, money rounded to cents, vectorised."""
    deviation = frame["deviation"].astype(float)
    return pd.DataFrame(
        {
            "card_id": pd.Series(np.asarray(frame["card_id"], dtype=object))
            .map(pks)
            .astype("int64")
            .to_numpy(),
            "date": pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "market_price": frame["market_price"].astype(float).round(2).to_numpy(),
            "fair_price": _money(frame["fair_price"]),
            # An estimator without a band (a baseline published by hand) leaves them NULL.
            "fair_low": _money(frame.get("fair_low", pd.Series(np.nan, index=frame.index))),
            "fair_high": _money(frame.get("fair_high", pd.Series(np.nan, index=frame.index))),
            "deviation": deviation.where(np.isfinite(deviation), 0.0).round(6).to_numpy(),
            "signal": frame["signal"].to_numpy(),
            "model_version_id": version_pk,
        }
    )


def _money(values: pd.Series) -> np.ndarray:
    """Prices rounded to cents, at least one cent; missing ones (no band) stay missing."""
    return values.astype(float).round(2).clip(lower=0.01).to_numpy()


def _tsv_chunks(table: pd.DataFrame, rows: int = 200_000) -> Iterator[str]:
    """COPY text in large blocks, formatted by pandas' C writer rather than per row.

    Missing values become ``\\N``, COPY's NULL.
    """
    for start in range(0, len(table), rows):
        yield table.iloc[start : start + rows].to_csv(
            sep="\t",
            header=False,
            index=False,
            float_format="%.6f",
            lineterminator="\n",
            na_rep="\\N",
        )


# --- the track record ----------------------------------------------------------------------

_COPIED = ("card_id", "date", "model_version_id", "signal", "market_price", "fair_price")
_BAND = ("fair_low", "fair_high")


def record_served(
    version_id: int,
    *,
    horizon: int,
    signal_rule: str,
    buy_threshold: float,
    sell_threshold: float,
    published_at: datetime,
    since: date | None = None,
) -> int:
    """Copy version ``version_id``'s predictions (dated >= ``since``) of the (card, day)s
    nobody served before into the track record, with the horizon, rule and thresholds
    given; the rows added.

    One ``INSERT … SELECT … ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite alike): the
    first prediction published for a (card, day) stays.
    """
    records, predictions = SignalRecord._meta.db_table, Prediction._meta.db_table
    columns = [*_COPIED, *_BAND, "horizon", "signal_rule", "buy_threshold", "sell_threshold"]
    selected = ", ".join(f"p.{c}" for c in (*_COPIED, *_BAND))
    since_clause = " AND p.date >= %s" if since else ""
    # Table and column names come from the models; every value is a query parameter.
    sql = (
        f"INSERT INTO {records} ({', '.join(columns)}, published_at) "  # noqa: S608 # nosec B608
        f"SELECT {selected}, %s, %s, %s, %s, %s FROM {predictions} p "
        f"WHERE p.model_version_id = %s{since_clause} ON CONFLICT (card_id, date) DO NOTHING"
    )
    params: list[Any] = [
        horizon,
        signal_rule,
        buy_threshold,
        sell_threshold,
        published_at,
        version_id,
    ]
    if since:
        params.append(since)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def drop_records_before(cutoff: date) -> int:
    """Remove the track record's rows dated before ``cutoff``; how many went."""
    deleted, _ = SignalRecord.objects.filter(date__lt=cutoff).delete()
    return deleted


def save_grades(graded: Sequence[SignalRecord]) -> None:
    """Write the outcome fields of ``graded`` records (filled in by the grader)."""
    SignalRecord.objects.bulk_update(
        graded,
        ["graded_at", "realised_median", "realised_return", "rose", "fell"],
        batch_size=2000,
    )
