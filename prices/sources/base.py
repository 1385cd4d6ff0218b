"""The small interface every price source implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One market price of one card on one day."""

    card_id: str
    date: date
    market_price: Decimal
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class CardInfo:
    """What a source knows about a card it reports, enough to create it if asked to."""

    card_id: str
    name: str
    set_code: str = ""
    set_name: str = ""
    number: str = ""
    rarity: str = ""
    category: str = "other"
    language: str = "en"
    tcgplayer_id: int | None = None
    printing: str = ""
    image_url: str = ""
    url: str = ""


@dataclass
class SourceBatch:
    """Everything a source fetched in one run; nothing is written until it is complete."""

    rows: list[PriceRow] = field(default_factory=list)
    new_cards: list[CardInfo] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # card ids the source had nothing for


@dataclass(frozen=True, slots=True)
class SourceCard:
    """The fields of a tracked card that a source needs to look it up."""

    card_id: str
    tcgplayer_id: int | None = None
    pricetracker_id: str = ""
    set_code: str = ""
    category: str = "other"


class PriceSource(Protocol):
    name: str

    def fetch(self, cards: Sequence[SourceCard], *, end: date, days: int) -> SourceBatch:
        """Prices of ``cards`` for the ``days`` days ending on ``end`` (inclusive)."""
        ...
