"""The one way prices get into the database: a bulk, transactional, idempotent upsert.

Every source (CSV files, the Pokemon Price Tracker API, the simulator) hands its rows to
:func:`upsert_prices`. Re-sending the same (card, date, source) updates the price in place
and never creates a duplicate. On PostgreSQL the rows are streamed with ``COPY`` into a
temporary table and merged with one ``INSERT … ON CONFLICT``; elsewhere (SQLite, the
embedded default) Django's ``bulk_create(update_conflicts=True)`` does the same merge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from pokewatch_site.errors import InvalidInput
from prices.bulk import copy_lines
from prices.models import Card, PricePoint, SourceFreshness
from prices.signals import prices_ingested
from prices.sources.base import CardInfo, PriceRow

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
SIMULATED_SOURCE = "simulated"
MAX_PRICE = Decimal("9999999999.99")
_CHUNK = 50_000


@dataclass
class IngestResult:
    source: str
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    cards_created: int = 0
    first_date: date | None = None
    last_date: date | None = None
    skipped_cards: list[str] = field(default_factory=list)
    scored: int | None = None  # predictions added for the new prices, if a champion exists

    def summary(self) -> str:
        span = f" from {self.first_date} to {self.last_date}" if self.first_date else ""
        return (
            f"{self.received} prices from '{self.source}'{span}: {self.created} created, "
            f"{self.updated} updated, {self.unchanged} unchanged; "
            f"{self.cards_created} new cards"
            + (f"; {self.scored} new predictions" if self.scored is not None else "")
        )


def upsert_prices(
    rows: Sequence[PriceRow],
    *,
    source: str,
    new_cards: Iterable[CardInfo] = (),
    progress: Progress | None = None,
) -> IngestResult:
    """Write ``rows`` for ``source`` in one transaction; all of them or none.

    ``new_cards`` are created first (cards that already exist are left alone). Every row
    must name a known card, be positive and appear once per (card, date); otherwise
    :class:`InvalidInput` is raised and nothing is written.
    """
    if not source or len(source) > 40:
        raise InvalidInput("source must be a name of 1 to 40 characters")
    if source == SIMULATED_SOURCE:
        _refuse_real_cards(rows, new_cards)
    rows = _dedupe(rows)
    result = IngestResult(source=source, received=len(rows))
    if rows:
        result.first_date = min(r.date for r in rows)
        result.last_date = max(r.date for r in rows)
    for row in rows:
        _check_row(row)

    with transaction.atomic():
        result.cards_created = create_missing_cards(new_cards)
        pks = card_pks({r.card_id for r in rows})
        unknown = sorted({r.card_id for r in rows} - pks.keys())
        if unknown:
            shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
            raise InvalidInput(f"{len(unknown)} unknown card id(s): {shown}")
        if not rows:  # a file with a header only: nothing to merge, on every database
            created = changed = 0
        elif connection.vendor == "postgresql":
            created, changed = _upsert_postgresql(rows, pks, source, progress)
        else:
            created, changed = _upsert_generic(rows, pks, source, progress)
        _advance_latest_dates(rows, pks)
        if changed:
            _record_freshness(source, rows)
    result.created = created
    result.updated = changed - created
    result.unchanged = result.received - changed
    logger.info("ingested %s", result.summary())
    return result


def _advance_latest_dates(rows: Sequence[PriceRow], pks: dict[str, int]) -> None:
    """Move each card's ``latest_price_date`` forward to its newest ingested day.

    One UPDATE per distinct newest day (a collection or a backfill day has one), in chunks.
    """
    newest: dict[int, date] = {}
    for row in rows:
        pk = pks[row.card_id]
        if row.date > newest.get(pk, date.min):
            newest[pk] = row.date
    by_day: dict[date, list[int]] = {}
    for pk, day in newest.items():
        by_day.setdefault(day, []).append(pk)
    for day, card_pks_of_day in by_day.items():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE prices_card SET latest_price_date = %s WHERE id = ANY(%s) "
                    "AND (latest_price_date IS NULL OR latest_price_date < %s)",
                    [day, card_pks_of_day, day],
                )
            continue
        for start in range(0, len(card_pks_of_day), 900):
            Card.objects.filter(pk__in=card_pks_of_day[start : start + 900]).filter(
                Q(latest_price_date__isnull=True) | Q(latest_price_date__lt=day)
            ).update(latest_price_date=day)


def _record_freshness(source: str, rows: Sequence[PriceRow]) -> None:
    """The source brought new or changed prices now; its newest day only moves forward."""
    newest = max(r.date for r in rows)
    freshness, created = SourceFreshness.objects.select_for_update().get_or_create(
        source=source, defaults={"newest_date": newest, "last_ingested_at": timezone.now()}
    )
    if not created:
        freshness.newest_date = max(freshness.newest_date, newest)
        freshness.last_ingested_at = timezone.now()
        freshness.save(update_fields=["newest_date", "last_ingested_at"])


def _refuse_real_cards(rows: Sequence[PriceRow], new_cards: Iterable[CardInfo]) -> None:
    """Simulated prices go to simulated cards only (ids starting ``sim-``), never a real one."""
    from prices.sources.simulated import is_simulated

    real = sorted(
        {r.card_id for r in rows if not is_simulated(r.card_id)}
        | {c.card_id for c in new_cards if not is_simulated(c.card_id)}
    )
    if real:
        shown = ", ".join(real[:5]) + (" …" if len(real) > 5 else "")
        raise InvalidInput(
            f"the simulator only writes its own sim- cards; refused for {len(real)} real "
            f"card(s): {shown}"
        )


def score_new_prices(result: IngestResult) -> IngestResult:
    """Give freshly ingested days their signals now, without waiting for retraining."""
    result.scored = score_from(result.first_date)
    return result


def score_from(first_date: date | None) -> int | None:
    """Announce the prices from ``first_date`` on (:data:`prices.signals.prices_ingested`)
    so the champion scores them; the predictions its receivers added, or None when none
    did (no champion, no receiver, nothing ingested).

    ``send_robust``: a receiver's failure is logged (by Django's dispatcher) and never
    undoes an import.
    """
    if first_date is None:
        return None
    scored: int | None = None
    for _receiver, response in prices_ingested.send_robust(
        sender=PricePoint, first_date=first_date
    ):
        if response is not None and not isinstance(response, Exception):
            scored = (scored or 0) + response
    return scored


def card_pks(card_ids: Iterable[str]) -> dict[str, int]:
    """Primary keys of the cards with these ids (the ones that exist)."""
    ids = list(card_ids)
    if connection.vendor == "postgresql":  # one query with an array, whatever the count
        with connection.cursor() as cursor:
            cursor.execute("SELECT card_id, id FROM prices_card WHERE card_id = ANY(%s)", [ids])
            return dict(cursor.fetchall())
    found: dict[str, int] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        found.update(Card.objects.filter(card_id__in=chunk).values_list("card_id", "pk"))
    return found


def create_missing_cards(cards: Iterable[CardInfo]) -> int:
    wanted = {c.card_id: c for c in cards}
    if not wanted:
        return 0
    existing = card_pks(wanted)
    new = [
        Card(
            card_id=info.card_id,
            name=info.name or info.card_id,
            set_code=info.set_code,
            set_name=info.set_name,
            number=info.number,
            rarity=info.rarity,
            category=info.category,
            language=info.language,
            tcgplayer_id=info.tcgplayer_id,
            printing=info.printing,
            image_url=info.image_url,
            url=info.url,
        )
        for card_id, info in wanted.items()
        if card_id not in existing
    ]
    if connection.vendor == "postgresql" and len(new) > 1000:
        _copy_cards(new)  # a whole catalog's first day: COPY, not 40k INSERT parameters
    else:
        Card.objects.bulk_create(new, batch_size=1000)
    return len(new)


_CARD_COPY_FIELDS = (
    "card_id",
    "name",
    "set_code",
    "set_name",
    "number",
    "rarity",
    "category",
    "language",
    "tcgplayer_id",
    "printing",
    "image_url",
    "url",
    "pricetracker_id",
)


def _copy_cards(cards: Sequence[Card]) -> None:
    """Insert new cards with COPY (defaults for the other columns, as ``Card()`` has them)."""
    now = timezone.now().isoformat()
    columns = [*_CARD_COPY_FIELDS, "tags", "active", "created_at", "updated_at"]

    def line(card: Card) -> str:
        values = [_copy_text(getattr(card, name)) for name in _CARD_COPY_FIELDS]
        return "\t".join([*values, "[]", "t", now, now]) + "\n"

    with connection.cursor() as cursor:
        copy_lines(cursor, Card._meta.db_table, columns, (line(c) for c in cards))


def _copy_text(value: object) -> str:
    """A value in COPY's text format: NULL as \\N, special characters escaped."""
    if value is None:
        return "\\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _dedupe(rows: Sequence[PriceRow]) -> list[PriceRow]:
    seen: dict[tuple[str, date], PriceRow] = {}
    for row in rows:
        key = (row.card_id, row.date)
        previous = seen.get(key)
        if previous is None:
            seen[key] = row
        elif previous != row:
            raise InvalidInput(
                f"conflicting prices for {row.card_id} on {row.date}: "
                f"{previous.market_price} and {row.market_price}"
            )
    return list(seen.values()) if len(seen) != len(rows) else list(rows)


def _check_row(row: PriceRow) -> None:
    if not (Decimal("0") < row.market_price <= MAX_PRICE):
        raise InvalidInput(
            f"{row.card_id} on {row.date}: market_price must be positive and at most "
            f"{MAX_PRICE}, got {row.market_price}"
        )
    if len(row.currency) != 3 or not row.currency.isalpha() or not row.currency.isupper():
        raise InvalidInput(f"{row.card_id} on {row.date}: bad currency {row.currency!r}")


def _upsert_postgresql(
    rows: Sequence[PriceRow], pks: dict[str, int], source: str, progress: Progress | None
) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE pw_price_stage "
            "(card_id bigint, date date, market_price numeric(12, 2), currency varchar(3)) "
            "ON COMMIT DROP"
        )
        copy_lines(
            cursor,
            "pw_price_stage",
            ("card_id", "date", "market_price", "currency"),
            (
                f"{pks[r.card_id]}\t{r.date.isoformat()}\t{r.market_price}\t{r.currency}\n"
                for r in rows
            ),
            total=len(rows),
            progress=progress,
        )
        cursor.execute(
            """
            WITH merged AS (
                INSERT INTO prices_pricepoint
                    (card_id, date, market_price, currency, source, created_at)
                SELECT card_id, date, market_price, currency, %s, now() FROM pw_price_stage
                ORDER BY card_id, date  -- index order: far fewer random page writes
                ON CONFLICT (card_id, date, source) DO UPDATE
                    SET market_price = EXCLUDED.market_price, currency = EXCLUDED.currency
                    WHERE prices_pricepoint.market_price <> EXCLUDED.market_price
                       OR prices_pricepoint.currency <> EXCLUDED.currency
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FROM merged
            """,
            [source],
        )
        created, changed = cursor.fetchone()
        cursor.execute("DROP TABLE pw_price_stage")
    return int(created), int(changed)


def _upsert_generic(
    rows: Sequence[PriceRow], pks: dict[str, int], source: str, progress: Progress | None
) -> tuple[int, int]:
    existing: dict[tuple[int, date], tuple[Decimal, str]] = {}
    card_ids = sorted({pks[r.card_id] for r in rows})
    first = min(r.date for r in rows)
    last = max(r.date for r in rows)
    for start in range(0, len(card_ids), 900):
        queryset = PricePoint.objects.filter(
            source=source, card_id__in=card_ids[start : start + 900], date__range=(first, last)
        ).values_list("card_id", "date", "market_price", "currency")
        for card_pk, day, price, currency in queryset.iterator(chunk_size=10_000):
            existing[(card_pk, day)] = (price, currency)

    created = changed = 0
    pending: list[PricePoint] = []
    for i, row in enumerate(rows, 1):
        key = (pks[row.card_id], row.date)
        old = existing.get(key)
        if old is None:
            created += 1
        elif old == (row.market_price, row.currency):
            continue
        changed += 1
        pending.append(
            PricePoint(
                card_id=key[0],
                date=row.date,
                market_price=row.market_price,
                currency=row.currency,
                source=source,
            )
        )
        if len(pending) >= _CHUNK:
            _write(pending)
            pending = []
            if progress:
                progress(f"  written {i:,} / {len(rows):,} rows")
    _write(pending)
    return created, changed


def _write(points: list[PricePoint]) -> None:
    if points:
        PricePoint.objects.bulk_create(
            points,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["card", "date", "source"],
            update_fields=["market_price", "currency"],
        )
