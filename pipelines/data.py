"""Read price history out of the database as the DataFrame the model code works on.

One source per card, never a blend: when a card has prices from several sources (say the
demo's history and tcgcsv), its series is the source with the most prices for that card,
ties going to the first of :data:`SOURCE_PRIORITY`, then the alphabetical first. The
other sources' rows stay in the database (and in the card's price history) but the model
never mixes them with it.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pandas as pd
from django.db import connection

from prices.models import Card

COLUMNS = ["card_id", "date", "market_price", "category"]
#: Ties between sources with as many prices for a card go to the first of these.
SOURCE_PRIORITY: tuple[str, ...] = ("tcgcsv", "pokemonpricetracker", "tcgplayer-demo", "csv")

# Rows in the unique index's order (card, date, source): no sort, no aggregate in SQL.
_SQL = """
    SELECT p.card_id, p.date, p.market_price, p.source
    FROM prices_pricepoint p
    WHERE p.card_id IN (SELECT id FROM prices_card WHERE active) {where}
    ORDER BY p.card_id, p.date
"""


def load_price_frame(
    *,
    start: date | None = None,
    end: date | None = None,
    card_ids: list[str] | None = None,
    card_pk_range: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Prices of active cards (of a range of primary keys: a shard) as ``card_id, date
    (datetime64), market_price, category``.

    One row per card and day, from the card's one source (see the module's docstring).
    ``card_id`` and ``category`` are categoricals: an integer code per row, not a string.
    """
    active = Card.objects.filter(active=True)
    if card_pk_range is not None:
        active = active.filter(pk__range=card_pk_range)
    cards = pd.DataFrame.from_records(
        list(active.values_list("pk", "card_id", "category")),
        columns=["pk", "card_id", "category"],
    )
    where, params = _filters(start, end, card_ids, card_pk_range)
    sql = _SQL.format(where=where)
    if connection.vendor == "postgresql":
        raw = _copy_out(sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            raw = pd.DataFrame.from_records(
                cursor.fetchall(), columns=["pk", "date", "market_price", "source"]
            )
    raw["date"] = pd.to_datetime(raw["date"])
    raw["market_price"] = raw["market_price"].astype(float)
    raw = one_source_per_card(raw)
    # Rows stay in (card, date) order.
    cards = cards.set_index("pk")
    return pd.DataFrame(
        {
            "card_id": pd.Categorical(raw["pk"].map(cards["card_id"]).to_numpy(dtype=object)),
            "date": raw["date"].to_numpy(),
            "market_price": raw["market_price"].to_numpy(),
            "category": pd.Categorical(raw["pk"].map(cards["category"]).to_numpy(dtype=object)),
        }
    ).dropna(subset=["card_id"])


def _filters(
    start: date | None,
    end: date | None,
    card_ids: list[str] | None,
    card_pk_range: tuple[int, int] | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if card_pk_range is not None:  # a shard: a range scan of the (card, date, source) index
        clauses.append("AND p.card_id BETWEEN %s AND %s")
        params.extend(card_pk_range)
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


def _copy_out(sql: str, params: list[Any]) -> pd.DataFrame:
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
        names=["pk", "date", "market_price", "source"],
        dtype={"pk": "int64", "source": "category"},
    )


def one_source_per_card(raw: pd.DataFrame) -> pd.DataFrame:
    """Keep, for every card (``pk``), the rows of its one source; drop ``source``."""
    source = raw["source"].astype("category")
    names = [str(name) for name in source.cat.categories]
    if len(names) > 1:
        codes = source.cat.codes.to_numpy()
        pks = raw["pk"].to_numpy()
        counts = (
            pd.DataFrame({"pk": pks, "code": codes})
            .value_counts(sort=False)
            .rename("n")
            .reset_index()
        )
        priority = {name: i for i, name in enumerate(SOURCE_PRIORITY)}
        counts["priority"] = counts["code"].map(lambda c: priority.get(names[c], len(priority)))
        counts["name"] = counts["code"].map(lambda c: names[c])
        counts = counts.sort_values(
            ["pk", "n", "priority", "name"], ascending=[True, False, True, True]
        )
        chosen = counts.drop_duplicates("pk").set_index("pk")["code"]
        raw = raw[codes == pd.Series(pks).map(chosen).to_numpy()]
    return raw.drop(columns="source")
