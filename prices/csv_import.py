"""Import a price CSV (the format of README.md, "CSV price format"): all of it or nothing.

The file is read and checked completely before anything is written; every bad row is
reported with its line number and field, and the first problems abort the import.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.utils.text import slugify

from pokewatch_site.errors import InvalidInput
from prices.ingestion import (
    MAX_PRICE,
    IngestResult,
    Progress,
    card_pks,
    score_new_prices,
    upsert_prices,
)
from prices.sources.base import CardInfo, PriceRow

REQUIRED_COLUMNS = ("card_id", "date", "market_price")
OPTIONAL_COLUMNS = ("currency", "card_name", "set_name")
MAX_REPORTED_ERRORS = 20
_CENT = Decimal("0.01")


@dataclass
class ParsedPrices:
    rows: list[PriceRow] = field(default_factory=list)
    first_line: dict[str, int] = field(default_factory=dict)  # card_id -> first line seen
    cards: dict[str, CardInfo] = field(default_factory=dict)


class CSVImportError(InvalidInput):
    def __init__(self, path: str, errors: list[str]) -> None:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        lines = "\n".join(f"  {e}" for e in shown)
        tail = f"\n  … and {more} more" if more > 0 else ""
        super().__init__(f"{path}: nothing imported, {len(errors)} problem(s):\n{lines}{tail}")
        self.errors = errors


def import_price_file(
    path: str | Path,
    *,
    source: str = "csv",
    create_cards: bool = False,
    progress: Progress | None = None,
) -> IngestResult:
    """Check and load one CSV file; raise :class:`CSVImportError` and write nothing if bad."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        parsed = parse_price_csv(handle, name=str(path), progress=progress)
    if not create_cards:
        known = card_pks(parsed.first_line)
        errors = [
            f"line {line}: card_id: unknown card {card_id!r} (add it to config/cards.yaml "
            "and run import_cards, or pass --create-cards)"
            for card_id, line in sorted(parsed.first_line.items(), key=lambda item: item[1])
            if card_id not in known
        ]
        if errors:
            raise CSVImportError(str(path), errors)
    if progress:
        progress(f"checked {len(parsed.rows):,} rows; writing")
    result = upsert_prices(
        parsed.rows,
        source=source,
        new_cards=parsed.cards.values() if create_cards else (),
        progress=progress,
    )
    return score_new_prices(result)


def parse_price_csv(
    handle: io.TextIOBase | Iterator[str], *, name: str = "<csv>", progress: Progress | None = None
) -> ParsedPrices:
    reader = csv.DictReader(handle)
    try:
        header = reader.fieldnames
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CSVImportError(name, [f"line 1: cannot read header: {exc}"]) from None
    if not header:
        raise CSVImportError(name, ["line 1: the file is empty (expected a header row)"])
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CSVImportError(
            name, [f"line 1: missing column(s) {', '.join(missing)} (header: {','.join(header)})"]
        )

    parsed = ParsedPrices()
    errors: list[str] = []
    seen: dict[tuple[str, date], tuple[Decimal, int]] = {}
    try:
        for record in reader:
            line = reader.line_num
            row = _parse_record(record, line, errors)
            if progress and line % 100_000 == 0:
                progress(f"  read {line:,} lines")
            if row is None:
                continue
            key = (row.card_id, row.date)
            if key in seen:
                price, first = seen[key]
                if price != row.market_price:
                    errors.append(
                        f"line {line}: market_price: {row.card_id} on {row.date} is "
                        f"{row.market_price} here but {price} on line {first}"
                    )
                continue
            seen[key] = (row.market_price, line)
            parsed.rows.append(row)
            if row.card_id not in parsed.first_line:
                parsed.first_line[row.card_id] = line
                parsed.cards[row.card_id] = CardInfo(
                    card_id=row.card_id,
                    name=(record.get("card_name") or "").strip() or row.card_id,
                    set_name=(record.get("set_name") or "").strip(),
                    category="sealed" if row.card_id.endswith("-sealed") else "other",
                )
    except (UnicodeDecodeError, csv.Error) as exc:
        errors.append(f"line {reader.line_num + 1}: unreadable: {exc}")
    if errors:
        raise CSVImportError(name, errors)
    return parsed


def _parse_record(record: dict[Any, Any], line: int, errors: list[str]) -> PriceRow | None:
    extra = record.get(None)  # DictReader files fields beyond the header under None
    if extra is not None:
        errors.append(f"line {line}: too many fields ({len(record) - 1 + len(extra)})")
        return None
    card_id = (record.get("card_id") or "").strip()
    raw_date = (record.get("date") or "").strip()
    raw_price = (record.get("market_price") or "").strip()
    currency = (record.get("currency") or "").strip().upper() or "USD"
    before = len(errors)
    if not card_id:
        errors.append(f"line {line}: card_id: empty")
    elif slugify(card_id) != card_id or len(card_id) > 100:
        errors.append(f"line {line}: card_id: {card_id!r} is not a lowercase slug")
    try:
        day = date.fromisoformat(raw_date)
        if len(raw_date) != 10:
            raise ValueError
    except ValueError:
        errors.append(f"line {line}: date: {raw_date!r} is not a YYYY-MM-DD date")
    try:
        price = Decimal(raw_price).quantize(_CENT)
        if not price.is_finite() or price <= 0 or price > MAX_PRICE:
            errors.append(f"line {line}: market_price: {raw_price!r} must be a positive price")
    except (InvalidOperation, ValueError):
        errors.append(f"line {line}: market_price: {raw_price!r} is not a number")
    if len(currency) != 3 or not currency.isalpha():
        errors.append(f"line {line}: currency: {currency!r} is not a 3-letter code")
    if len(errors) > before:
        return None
    return PriceRow(card_id=card_id, date=day, market_price=price, currency=currency)
