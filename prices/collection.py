"""Collect prices from a live or simulated source and write them through the ingestion service."""

from __future__ import annotations

import logging
from datetime import date

from django.conf import settings

from pokewatch_site.errors import InvalidInput
from prices.ingestion import IngestResult, Progress, score_new_prices, upsert_prices
from prices.models import Card
from prices.sources.base import PriceSource, SourceCard

logger = logging.getLogger(__name__)

SOURCES = ("tcgcsv", "pokemonpricetracker", "simulated")
MAX_DAYS = 3650


def get_source(name: str, *, seed: int = 42, extra_cards: int = 0) -> PriceSource:
    if name == "pokemonpricetracker":
        from prices.sources.pokemonpricetracker import PokemonPriceTrackerSource

        return PokemonPriceTrackerSource.from_settings()
    if name == "simulated":
        from prices.sources.simulated import SimulatedSource

        return SimulatedSource(seed=seed, extra_cards=extra_cards)
    if name == "tcgcsv":
        raise InvalidInput("tcgcsv collects day by day: use prices.backfill.collect_days")
    raise InvalidInput(f"unknown price source {name!r}; choose one of {', '.join(SOURCES)}")


def tracked_cards() -> list[SourceCard]:
    return [
        SourceCard(
            card_id=card_id,
            tcgplayer_id=tcgplayer_id,
            pricetracker_id=pricetracker_id,
            set_code=set_code,
            category=category,
        )
        for card_id, tcgplayer_id, pricetracker_id, set_code, category in Card.objects.filter(
            active=True
        ).values_list("card_id", "tcgplayer_id", "pricetracker_id", "set_code", "category")
    ]


def collect_prices(
    source_name: str | None = None,
    *,
    end: date | None = None,
    days: int = 1,
    seed: int = 42,
    extra_cards: int = 0,
    progress: Progress | None = None,
) -> IngestResult:
    """Fetch ``days`` days of prices ending on ``end`` for every active card and upsert them.

    The whole fetch completes before anything is written, and the write is one
    transaction, so a source that fails half-way leaves the database as it was.
    """
    source_name = source_name or settings.POKEWATCH_PRICE_SOURCE
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}, got {days}")
    if extra_cards < 0:
        raise InvalidInput("cards must be zero or more")
    end = end or date.today()
    source = get_source(source_name, seed=seed, extra_cards=extra_cards)
    cards = tracked_cards()
    if progress:
        progress(f"fetching {days} day(s) to {end} for {len(cards)} card(s) from {source.name}")
    batch = source.fetch(cards, end=end, days=days)
    if progress:
        progress(f"fetched {len(batch.rows):,} prices; writing")
    result = upsert_prices(
        batch.rows, source=source.name, new_cards=batch.new_cards, progress=progress
    )
    result.skipped_cards = batch.skipped
    score_new_prices(result)
    if batch.skipped:
        logger.warning("%s had no prices for %d card(s)", source.name, len(batch.skipped))
    return result
