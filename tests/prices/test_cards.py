from __future__ import annotations

from pathlib import Path

import pytest

from pokewatch_site.errors import InvalidInput
from prices.cards import import_cards_file
from prices.models import Card
from tests.support import ROOT


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cards.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_universe_loads_and_reloads_unchanged(db) -> None:
    first = import_cards_file(ROOT / "config" / "cards.yaml")
    second = import_cards_file(ROOT / "config" / "cards.yaml")

    assert first.created == Card.objects.count() > 20
    assert (second.created, second.updated, second.unchanged) == (0, 0, first.created)
    charizard = Card.objects.get(card_id="sv2a-151-charizard-ex-201")
    assert (charizard.number, charizard.set_code, charizard.language) == ("201", "sv2a", "ja")
    pikachu = Card.objects.get(card_id="sv2a-151-pikachu-025-master-ball")
    assert pikachu.number == "025"


def test_demo_cards_carry_their_tcgplayer_ids(db) -> None:
    import_cards_file(ROOT / "config" / "demo" / "cards.yaml")
    assert Card.objects.get(card_id="tcgplayer-517045-holofoil").tcgplayer_id == 517045
    assert Card.objects.filter(category="sealed").count() == 13


def test_changed_entry_is_updated(db, tmp_path: Path) -> None:
    import_cards_file(write_yaml(tmp_path, "cards:\n  - {card_id: a, name: A, rarity: R}\n"))
    result = import_cards_file(
        write_yaml(tmp_path, "cards:\n  - {card_id: a, name: A, rarity: SAR, active: false}\n")
    )
    card = Card.objects.get(card_id="a")
    assert (result.updated, card.rarity, card.active) == (1, "SAR", False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cards: 3", "expected a mapping with a 'cards:' list"),
        ("cards:\n  - just-a-string\n", "card #1: expected a mapping"),
        ("cards:\n  - {card_id: a}\n", r"card #1 \(a\): 'name' is required"),
        ("cards:\n  - {card_id: a, name: A}\n  - {card_id: B C, name: B}\n", r"card #2 \(B C\)"),
        ("cards:\n  - {card_id: a, name: A, colour: red}\n", "unknown field.*colour"),
        ("cards:\n  - {card_id: a, name: A, category: shiny}\n", "category must be one of"),
        ("cards:\n  - {card_id: a, name: A, tcgplayer_id: abc}\n", "'tcgplayer_id' must be"),
        ("cards:\n  - {card_id: a, name: A}\n  - {card_id: a, name: A}\n", "more than once: a"),
        ("cards: [", "not valid YAML"),
    ],
)
def test_if_file_is_malformed_then_error_names_the_entry(
    db, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        import_cards_file(write_yaml(tmp_path, text))
    assert Card.objects.count() == 0


def test_if_a_later_entry_is_bad_then_earlier_ones_are_not_written(db, tmp_path: Path) -> None:
    text = "cards:\n  - {card_id: a, name: A}\n  - {card_id: b, name: B, tags: [1]}\n"
    with pytest.raises(InvalidInput, match="tags must be a list of strings"):
        import_cards_file(write_yaml(tmp_path, text))
    assert Card.objects.count() == 0
