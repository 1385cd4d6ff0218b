"""Collect tcgcsv.com prices day by day: the daily collection and a backfill of any length.

``collect_days`` walks the days of a window, oldest first. Each day is read from tcgcsv
(its daily archive, or the live JSON for today), turned into one price per card (a card
is one TCGplayer product and printing, ``tcgcsv.card_id_for``) and written through the
ingestion service **in one transaction with its** :class:`~prices.models.IngestedDay`
record. So a backfill is resumable: days already ingested are skipped (unless ``force``),
and an interrupted run loses at most the day it was writing. A day without an archive
(404) is reported and skipped; a corrupt archive fails that day alone, writing nothing of
it. A source that cannot be reached stops the run (nothing more is written): the caller
(the daily task) tries again later. Every run is recorded as a
:class:`~prices.models.CollectionRun`.

Which cards: the whole catalog by default, or the groups (sets) of
``POKEWATCH_TCGCSV_GROUPS``. A product and printing not tracked yet becomes a card when its
price is at least ``POKEWATCH_TCGCSV_MIN_PRICE``, with its name, set, number, rarity,
image and TCGplayer URL from the catalog; once tracked, every later price of it is kept,
whatever its level. ``config/cards.yaml`` still curates categories and tags.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import reset_queries, transaction
from django.utils import timezone

from pokewatch_site.errors import InvalidInput, SourceError
from prices.ingestion import card_pks, score_from, upsert_prices
from prices.models import CollectionRun, IngestedDay
from prices.sources.base import CardInfo, PriceRow
from prices.sources.tcgcsv import (
    ArchiveMissing,
    DayPrices,
    TcgcsvClient,
    TcgcsvGroup,
    TcgcsvProduct,
    card_id_for,
)

logger = logging.getLogger(__name__)

SOURCE = "tcgcsv"
MAX_DAYS = 3650


@dataclass
class DayOutcome:
    day: date
    status: str  # ingested, skipped (already there), missing (no archive), failed
    rows: int = 0
    cards_created: int = 0
    seconds: float = 0.0
    detail: str = ""


@dataclass
class CollectionResult:
    run: CollectionRun
    days: list[DayOutcome] = field(default_factory=list)
    scored: int | None = None

    def count(self, status: str) -> int:
        return sum(1 for d in self.days if d.status == status)

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.days)

    def summary(self) -> str:
        failed = [d for d in self.days if d.status == "failed"]
        text = (
            f"{SOURCE}: {self.count('ingested')} day(s) ingested ({self.rows:,} prices, "
            f"{sum(d.cards_created for d in self.days):,} new cards), "
            f"{self.count('skipped')} already there, {self.count('missing')} without an "
            f"archive, {len(failed)} failed"
        )
        if self.scored is not None:
            text += f"; {self.scored:,} new predictions"
        return text + "".join(f"\n  {d.day}: {d.detail}" for d in failed)


DayCallback = Callable[[DayOutcome], None]


def collect_days(
    end: date | None = None,
    days: int = 1,
    *,
    force: bool = False,
    trigger: str = "command",
    client: TcgcsvClient | None = None,
    group_ids: Collection[int] | None = None,
    min_price: Decimal | None = None,
    on_day: DayCallback | None = None,
) -> CollectionResult:
    """Collect the ``days`` days ending on ``end`` (default today), oldest first."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}, got {days}")
    end = end or timezone.now().date()
    first = end - timedelta(days=days - 1)
    client = client or TcgcsvClient.from_settings()
    groups = list(settings.POKEWATCH_TCGCSV_GROUPS) if group_ids is None else list(group_ids)
    threshold = settings.POKEWATCH_TCGCSV_MIN_PRICE if min_price is None else min_price
    run = CollectionRun.objects.create(
        source=SOURCE, trigger=trigger, first_day=first, last_day=end
    )
    result = CollectionResult(run)
    done = set(
        IngestedDay.objects.filter(source=SOURCE, date__range=(first, end)).values_list(
            "date", flat=True
        )
    )
    catalog = _Catalog(client, groups or None)
    try:
        for offset in range(days):
            day = first + timedelta(days=offset)
            if day in done and not force:
                outcome = DayOutcome(day, "skipped", detail="already ingested")
            else:
                outcome = _collect_day(client, catalog, day, Decimal(threshold))
            result.days.append(outcome)
            reset_queries()  # DEBUG keeps 9,000 queries; a day's card-id array is ~1 MB of them
            if on_day:
                on_day(outcome)
    except SourceError as exc:  # the source is down or refuses us: stop, keep what is done
        _finish(result, CollectionRun.Status.FAILED, exc.detail)
        logger.error("collection #%s from %s stopped: %s", run.pk, SOURCE, exc.detail)
        _score(result)  # the days written before it stopped are served like any other
        raise
    except BaseException as exc:  # interrupted (Ctrl-C, a time limit): the days done stay
        _finish(result, CollectionRun.Status.FAILED, f"interrupted: {type(exc).__name__}")
        raise
    _score(result)
    failed = result.count("failed") + result.count("missing")
    _finish(result, CollectionRun.Status.PARTIAL if failed else CollectionRun.Status.SUCCEEDED)
    return result


def _score(result: CollectionResult) -> None:
    """The champion's predictions of the days ingested: once, not after each day."""
    ingested = [d.day for d in result.days if d.status == "ingested"]
    if ingested:
        result.scored = score_from(min(ingested))


def _collect_day(
    client: TcgcsvClient, catalog: _Catalog, day: date, threshold: Decimal
) -> DayOutcome:
    started = time.perf_counter()
    try:
        prices = client.day_prices(day, catalog.group_ids())
    except ArchiveMissing as exc:
        return DayOutcome(day, "missing", detail=exc.detail)
    except SourceError as exc:
        if exc.transient:
            raise
        logger.error("%s: %s", day, exc.detail)
        return DayOutcome(day, "failed", detail=exc.detail)
    rows, new_cards = catalog.rows(prices, threshold)
    with transaction.atomic():
        written = upsert_prices(rows, source=SOURCE, new_cards=new_cards)
        IngestedDay.objects.update_or_create(
            source=SOURCE,
            date=day,
            defaults={
                "rows": written.received,
                "unpriced": prices.unpriced,
                "cards_created": written.cards_created,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
    catalog.tracked.update(card.card_id for card in new_cards)
    seconds = time.perf_counter() - started
    return DayOutcome(
        day,
        "ingested",
        rows=written.received,
        cards_created=written.cards_created,
        seconds=seconds,
        detail=f"{written.created:,} new, {written.updated:,} changed, "
        f"{written.unchanged:,} unchanged",
    )


class _Catalog:
    """The groups to read, the cards tracked so far, and product metadata when needed."""

    def __init__(self, client: TcgcsvClient, group_ids: list[int] | None) -> None:
        self.client = client
        self.wanted = group_ids
        self._groups: dict[int, TcgcsvGroup] | None = None
        self._products: dict[int, dict[int, TcgcsvProduct]] = {}
        self.tracked: set[str] = set()
        self._known: set[str] = set()

    def groups(self) -> dict[int, TcgcsvGroup]:
        if self._groups is None:
            self._groups = {g.group_id: g for g in self.client.groups()}
        return self._groups

    def group_ids(self) -> list[int] | None:
        """The groups to read: the configured ones, else every group of the catalog."""
        return self.wanted

    def rows(self, day: DayPrices, threshold: Decimal) -> tuple[list[PriceRow], list[CardInfo]]:
        ids = [card_id_for(p.product_id, p.printing) for p in day.prices]
        unknown = {i for i in ids if i not in self.tracked and i not in self._known}
        if unknown:
            existing = card_pks(unknown)
            self.tracked.update(existing)
            self._known.update(unknown - existing.keys())
        rows: list[PriceRow] = []
        new: dict[str, CardInfo] = {}
        for card_id, price in zip(ids, day.prices, strict=True):
            if card_id not in self.tracked:
                if price.market_price < threshold:
                    continue
                new[card_id] = self._card_info(
                    card_id, price.product_id, price.printing, price.group_id
                )
            rows.append(PriceRow(card_id, day.day, price.market_price))
        return rows, list(new.values())

    def _card_info(self, card_id: str, product_id: int, printing: str, group_id: int) -> CardInfo:
        group = self.groups().get(group_id)
        product = self._product(group_id, product_id)
        is_sealed = product is not None and not product.number and not product.rarity
        return CardInfo(
            card_id=card_id,
            name=(product.name if product else f"TCGplayer product {product_id}")[:200],
            set_code=(group.abbreviation or str(group_id))[:40] if group else str(group_id),
            set_name=group.name[:200] if group else "",
            number=product.number[:20] if product else "",
            rarity=product.rarity[:60] if product else "",
            category="sealed" if is_sealed else "other",
            tcgplayer_id=product_id,
            printing=printing[:40],
            image_url=product.image_url[:300] if product else "",
            url=product.url[:300] if product else "",
        )

    def _product(self, group_id: int, product_id: int) -> TcgcsvProduct | None:
        if group_id not in self._products:
            try:
                listed = self.client.products(group_id)
            except SourceError as exc:
                if exc.transient:
                    raise
                logger.warning("no product metadata for group %s: %s", group_id, exc.detail)
                listed = []
            self._products[group_id] = {p.product_id: p for p in listed}
        return self._products[group_id].get(product_id)


def _finish(result: CollectionResult, status: str, error: str = "") -> None:
    run = result.run
    run.status = status
    run.days_ingested = result.count("ingested")
    run.days_skipped = result.count("skipped")
    run.days_missing = result.count("missing")
    run.days_failed = result.count("failed")
    run.rows = result.rows
    run.cards_created = sum(d.cards_created for d in result.days)
    problems = [f"{d.day}: {d.detail}" for d in result.days if d.status in ("failed", "missing")]
    run.error = "\n".join([error, *problems]).strip()[:10_000]
    run.finished_at = timezone.now()
    run.save()
