"""Import a price CSV (the format of README.md, "CSV price format"): all of it or nothing.

The file is read and checked completely before anything is written; every problem is
reported with its line number and field, in one pass (malformed fields, unknown cards and
currency conflicts together), and any problem aborts the import. Strict on purpose: a
date is ``YYYY-MM-DD`` and not after tomorrow, a price a plain decimal (``412.50``: no
sign, exponent, ``_`` or thousands separator), a card's prices stay in one currency, names
fit their columns. A UTF-8 byte-order mark (Excel writes one) is accepted.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db.models import F
from django.utils import timezone
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
from prices.models import PricePoint
from prices.sources.base import CardInfo, PriceRow

REQUIRED_COLUMNS = ("card_id", "date", "market_price")
OPTIONAL_COLUMNS = ("currency", "card_name", "set_name")
MAX_REPORTED_ERRORS = 20
_CENT = Decimal("0.01")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
#: The longest names a card takes (``Card.name``, ``Card.set_name``).
MAX_NAME_LENGTH = {"card_name": 200, "set_name": 200}
MAX_CARD_ID_LENGTH = 100


@dataclass
class ParsedPrices:
    rows: list[PriceRow] = field(default_factory=list)
    first_line: dict[str, int] = field(default_factory=dict)  # card_id -> first line seen
    cards: dict[str, CardInfo] = field(default_factory=dict)
    currency: dict[str, tuple[str, int]] = field(default_factory=dict)  # card_id -> (cur, line)
    #: Problems found, as (line, text): reported together, in line order.
    errors: list[tuple[int, str]] = field(default_factory=list)

    def error(self, line: int, text: str) -> None:
        self.errors.append((line, f"line {line}: {text}"))


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
    """Check and load one CSV file; raise :class:`CSVImportError` and write nothing if bad.

    Every problem of the file is reported at once: its malformed fields, its unknown
    cards (without ``create_cards``) and cards whose prices would mix currencies.
    """
    path = Path(path)
    try:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is read as nothing.
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        parsed = read_price_csv(handle, name=str(path), progress=progress)
    known = card_pks(parsed.first_line)
    if not create_cards:
        for card_id, line in parsed.first_line.items():
            if card_id not in known:
                parsed.error(
                    line,
                    f"card_id: unknown card {card_id!r} (add it to config/cards.yaml and run "
                    "import_cards, or pass --create-cards)",
                )
    _check_stored_currencies(parsed, known)
    _raise_if_bad(str(path), parsed)
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
    """The rows of a price CSV; :class:`CSVImportError` with every problem if any."""
    parsed = read_price_csv(handle, name=name, progress=progress)
    _raise_if_bad(name, parsed)
    return parsed


def read_price_csv(
    handle: io.TextIOBase | Iterator[str], *, name: str = "<csv>", progress: Progress | None = None
) -> ParsedPrices:
    """The rows of a price CSV and the problems of its rows (``errors``), checked without
    the database. A header that cannot be used raises :class:`CSVImportError` at once."""
    reader = csv.DictReader(handle)
    try:
        header = reader.fieldnames
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CSVImportError(name, [f"line 1: cannot read header: {exc}"]) from None
    if not header:
        raise CSVImportError(name, ["line 1: the file is empty (expected a header row)"])
    header = [column.lstrip("\ufeff") for column in header]  # a BOM in an already-open file
    reader.fieldnames = header
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CSVImportError(
            name, [f"line 1: missing column(s) {', '.join(missing)} (header: {','.join(header)})"]
        )

    parsed = ParsedPrices()
    latest = timezone.localdate() + timedelta(days=1)
    seen: dict[tuple[str, date], tuple[Decimal, int]] = {}
    try:
        for record in reader:
            line = reader.line_num
            row = _parse_record(record, line, parsed, latest)
            if progress and line % 100_000 == 0:
                progress(f"  read {line:,} lines")
            if row is None:
                continue
            key = (row.card_id, row.date)
            if key in seen:
                price, first = seen[key]
                if price != row.market_price:
                    parsed.error(
                        line,
                        f"market_price: {row.card_id} on {row.date} is {row.market_price} here "
                        f"but {price} on line {first}",
                    )
                continue
            seen[key] = (row.market_price, line)
            currency, first = parsed.currency.setdefault(row.card_id, (row.currency, line))
            if currency != row.currency:
                parsed.error(
                    line,
                    f"currency: {row.card_id} is priced in {currency} on line {first}; one "
                    f"currency per card, got {row.currency}",
                )
                continue
            parsed.rows.append(row)
            if row.card_id not in parsed.cards:
                parsed.cards[row.card_id] = CardInfo(
                    card_id=row.card_id,
                    name=(record.get("card_name") or "").strip() or row.card_id,
                    set_name=(record.get("set_name") or "").strip(),
                    category="sealed" if row.card_id.endswith("-sealed") else "other",
                )
    except (UnicodeDecodeError, csv.Error) as exc:
        parsed.error(reader.line_num + 1, f"unreadable: {exc}")
    return parsed


def _raise_if_bad(name: str, parsed: ParsedPrices) -> None:
    if parsed.errors:
        parsed.errors.sort(key=lambda error: error[0])  # stable: a line's own order stays
        raise CSVImportError(name, [text for _line, text in parsed.errors])


def _check_stored_currencies(parsed: ParsedPrices, known: dict[str, int]) -> None:
    """A card already priced in another currency (its latest price says which) is refused."""
    ids = [card_id for card_id in parsed.currency if card_id in known]
    stored: dict[str, str] = {}
    for start in range(0, len(ids), 900):
        stored.update(
            PricePoint.objects.filter(
                card__card_id__in=ids[start : start + 900],
                date=F("card__latest_price_date"),
            ).values_list("card__card_id", "currency")
        )
    for card_id, (currency, line) in parsed.currency.items():
        before = stored.get(card_id)
        if before is not None and before != currency:
            parsed.error(
                line,
                f"currency: {card_id} is priced in {before} in the database; one currency per "
                f"card, got {currency}",
            )


def _parse_record(
    record: dict[Any, Any], line: int, parsed: ParsedPrices, latest: date
) -> PriceRow | None:
    """The row of ``record``, or None after adding its problems to ``parsed``.

    A card id that is well formed counts as seen (``first_line``) even if another field of
    the row is bad, so that an unknown card is reported in the same pass.
    """
    extra = record.get(None)  # DictReader files fields beyond the header under None
    if extra is not None:
        parsed.error(line, f"too many fields ({len(record) - 1 + len(extra)})")
        return None
    card_id = (record.get("card_id") or "").strip()
    raw_date = (record.get("date") or "").strip()
    raw_price = (record.get("market_price") or "").strip()
    currency = (record.get("currency") or "").strip().upper() or "USD"
    before = len(parsed.errors)
    if not card_id:
        parsed.error(line, "card_id: empty")
    elif slugify(card_id) != card_id or len(card_id) > MAX_CARD_ID_LENGTH:
        shown = card_id if len(card_id) <= 60 else card_id[:60] + "…"
        parsed.error(
            line,
            f"card_id: {shown!r} is not a lowercase slug of at most {MAX_CARD_ID_LENGTH} "
            "characters",
        )
    else:
        parsed.first_line.setdefault(card_id, line)
    day = _parse_date(raw_date, line, parsed, latest)
    price = _parse_price(raw_price, line, parsed)
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        parsed.error(line, f"currency: {currency!r} is not a 3-letter code")
    for column, limit in MAX_NAME_LENGTH.items():
        value = (record.get(column) or "").strip()
        if len(value) > limit:
            parsed.error(line, f"{column}: {len(value):,} characters, at most {limit}")
    if len(parsed.errors) > before or day is None or price is None:
        return None
    return PriceRow(card_id=card_id, date=day, market_price=price, currency=currency)


def _parse_date(raw: str, line: int, parsed: ParsedPrices, latest: date) -> date | None:
    """A calendar ``YYYY-MM-DD`` day (not an ISO week or ordinal date), not after ``latest``."""
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError
        day = date.fromisoformat(raw)
    except ValueError:
        parsed.error(line, f"date: {raw!r} is not a YYYY-MM-DD date")
        return None
    if day > latest:
        parsed.error(line, f"date: {raw} is in the future (the latest day accepted is {latest})")
        return None
    return day


def _parse_price(raw: str, line: int, parsed: ParsedPrices) -> Decimal | None:
    """A plain decimal (``412.50``), positive and at most ``MAX_PRICE``, to the cent."""
    if raw.lower() in ("nan", "inf", "infinity") or raw.startswith(("-", "+")):
        parsed.error(line, f"market_price: {raw!r} must be a positive price")
        return None
    if not _PLAIN_DECIMAL.fullmatch(raw):
        parsed.error(line, f"market_price: {raw!r} is not a number (a plain decimal like 412.50)")
        return None
    price = Decimal(raw)
    if price <= MAX_PRICE:  # quantize() of a huge number would overflow the context
        price = price.quantize(_CENT)
    if price <= 0 or price > MAX_PRICE:
        parsed.error(line, f"market_price: {raw!r} must be a positive price, at most {MAX_PRICE}")
        return None
    return price
