from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from prices.models import Card, PricePoint
from tests.support.demo import DEMO_CARDS, DEMO_CSV


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_import_cards_reports_counts(db) -> None:
    assert "29 created, 0 updated, 0 unchanged" in run("import_cards")
    assert "0 created, 0 updated, 29 unchanged" in run("import_cards")


def test_import_cards_with_a_bad_file_fails_clearly(db, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("cards:\n  - {name: nameless}\n")
    with pytest.raises(CommandError, match=r"card #1 \(no card_id\): 'card_id' is required"):
        run("import_cards", str(path))


def test_import_prices_loads_demo_and_reports(db) -> None:
    run("import_cards", str(DEMO_CARDS))
    output = run("import_prices", str(DEMO_CSV), "--source", "tcgplayer-demo")
    assert "9161 created" in output
    assert "checked 9,161 rows" in output
    assert PricePoint.objects.filter(source="tcgplayer-demo").count() == 9161


def test_import_prices_refuses_unknown_cards_without_create_cards(db) -> None:
    with pytest.raises(CommandError, match="line 2: card_id: unknown card"):
        run("import_prices", str(DEMO_CSV))
    assert PricePoint.objects.count() == 0


def test_collect_prices_simulated_adds_cards_and_is_idempotent(db) -> None:
    args = ("collect_prices", "--source", "simulated", "--date", "2026-06-30", "--days", "30")
    first = run(*args, "--cards", "5")
    count = PricePoint.objects.count()
    second = run(*args, "--cards", "5")

    assert Card.objects.filter(card_id__startswith="sim-").count() == 5
    assert "5 new cards" in first
    assert "0 created, 0 updated" in second
    assert PricePoint.objects.count() == count > 100


def test_collect_prices_rejects_a_bad_date(db) -> None:
    with pytest.raises(CommandError, match="argument --date: must be a YYYY-MM-DD date"):
        run("collect_prices", "--source", "simulated", "--date", "30/06/2026")


def test_collect_prices_rejects_cards_for_live_source(db) -> None:
    with pytest.raises(CommandError, match="--cards only applies"):
        run("collect_prices", "--source", "pokemonpricetracker", "--cards", "3")


def test_collect_prices_rejects_silly_day_counts(db) -> None:
    with pytest.raises(CommandError, match="days must be between"):
        run("collect_prices", "--source", "simulated", "--days", "0")
