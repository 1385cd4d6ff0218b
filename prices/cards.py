"""Load the tracked card universe from a YAML file (``config/cards.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from django.utils.text import slugify

from pokewatch_site.errors import InvalidInput
from prices.models import Card

_FIELDS = {
    "card_id": str,
    "name": str,
    "set_code": str,
    "set_name": str,
    "number": str,
    "rarity": str,
    "category": str,
    "tags": list,
    "language": str,
    "tcgplayer_id": int,
    "printing": str,
    "image_url": str,
    "url": str,
    "pricetracker_id": str,
    "active": bool,
}
_CATEGORIES = set(Card.Category.values)


@dataclass
class CardImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def summary(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


def import_cards_file(path: str | Path) -> CardImportResult:
    """Create or update every card of the file; idempotent; all or nothing."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from None
    entries = _entries(document, path)
    defaults = document.get("defaults") or {}
    cleaned = [_clean({**defaults, **entry}, index, path) for index, entry in enumerate(entries, 1)]
    ids = [c["card_id"] for c in cleaned]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InvalidInput(f"{path}: card_id listed more than once: {', '.join(duplicates)}")

    result = CardImportResult()
    with transaction.atomic():
        existing = {c.card_id: c for c in Card.objects.filter(card_id__in=ids)}
        for values in cleaned:
            card = existing.get(values["card_id"])
            if card is None:
                Card.objects.create(**values)
                result.created += 1
                continue
            changed = [k for k, v in values.items() if getattr(card, k) != v]
            if changed:
                for key in changed:
                    setattr(card, key, values[key])
                card.save(update_fields=[*changed, "updated_at"])
                result.updated += 1
            else:
                result.unchanged += 1
    return result


def _entries(document: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("cards"), list):
        raise InvalidInput(f"{path}: expected a mapping with a 'cards:' list at the top")
    for index, entry in enumerate(document["cards"], 1):
        if not isinstance(entry, dict):
            raise InvalidInput(f"{path}: card #{index}: expected a mapping, got {entry!r}")
    return document["cards"]


def _clean(entry: dict[str, Any], index: int, path: Path) -> dict[str, Any]:
    label = f"{path}: card #{index} ({entry.get('card_id', 'no card_id')})"
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise InvalidInput(f"{label}: unknown field(s) {', '.join(unknown)}")
    for required in ("card_id", "name"):
        if not entry.get(required):
            raise InvalidInput(f"{label}: '{required}' is required")
    values: dict[str, Any] = {}
    for key, value in entry.items():
        kind = _FIELDS[key]
        if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # YAML reads card numbers like 025 as numbers
        if value is None and key in ("tcgplayer_id",):
            values[key] = None
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InvalidInput(f"{label}: '{key}' must be a {kind.__name__}, got {value!r}")
        values[key] = value
    if slugify(values["card_id"]) != values["card_id"]:
        raise InvalidInput(f"{label}: card_id must be a lowercase slug like sv2a-151-mew-ex-205")
    if values.get("category", "other") not in _CATEGORIES:
        raise InvalidInput(
            f"{label}: category must be one of {', '.join(sorted(_CATEGORIES))}, "
            f"got {values['category']!r}"
        )
    if not all(isinstance(t, str) for t in values.get("tags", [])):
        raise InvalidInput(f"{label}: tags must be a list of strings")
    return values
