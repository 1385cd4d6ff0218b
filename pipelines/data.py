"""Read price history out of the database as the DataFrame the model code works on."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
from django.db import connection

from prices.models import Card

COLUMNS = ["card_id", "date", "market_price", "category"]

# One price per card and day: when several sources report the same day, their mean.
_SQL = """
    SELECT c.card_id, p.date, AVG(p.market_price)::float AS market_price, c.category
    FROM prices_pricepoint p JOIN prices_card c ON c.id = p.card_id
    WHERE c.active {where}
    GROUP BY c.card_id, p.date, c.category
    ORDER BY c.card_id, p.date
"""


def load_price_frame(
    *, start: date | None = None, end: date | None = None, card_ids: list[str] | None = None
) -> pd.DataFrame:
    """Prices of active cards as ``card_id, date (datetime64), market_price, category``."""
    where, params = _filters(start, end, card_ids)
    sql = _SQL.format(where=where)
    if connection.vendor == "postgresql":
        frame = _copy_out(sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql.replace("::float", ""), params)
            frame = pd.DataFrame.from_records(cursor.fetchall(), columns=COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["market_price"] = frame["market_price"].astype(float)
    frame["card_id"] = frame["card_id"].astype(object)
    return frame


def _filters(
    start: date | None, end: date | None, card_ids: list[str] | None
) -> tuple[str, list[object]]:
    clauses, params = [], []
    if start is not None:
        clauses.append("AND p.date >= %s")
        params.append(start)
    if end is not None:
        clauses.append("AND p.date <= %s")
        params.append(end)
    if card_ids is not None:
        pks = list(Card.objects.filter(card_id__in=card_ids).values_list("pk", flat=True))
        placeholders = ",".join(["%s"] * len(pks))
        clauses.append(f"AND p.card_id IN ({placeholders})" if pks else "AND 0=1")
        params.extend(pks)
    return " ".join(clauses), params


def _copy_out(sql: str, params: list[object]) -> pd.DataFrame:
    """PostgreSQL: COPY … TO STDOUT as CSV straight into pandas (millions of rows a second)."""
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        query = raw.mogrify(sql, params) if params else sql
        with raw.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                buffer.write(block)
    buffer.seek(0)
    return pd.read_csv(
        buffer,
        names=COLUMNS,
        dtype={"card_id": str, "market_price": float, "category": str},
        parse_dates=["date"],
    )


def latest_price_date() -> date | None:
    from django.db.models import Max

    from prices.models import PricePoint

    return PricePoint.objects.aggregate(latest=Max("date"))["latest"]
