from __future__ import annotations

import io
from pathlib import Path

import pytest

from prices.csv_import import CSVImportError, import_price_file, parse_price_csv
from prices.models import Card, PricePoint
from tests.support.demo import DEMO_CSV


def write_csv(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_history_imports_and_reimports_to_the_same_rows(db) -> None:
    first = import_price_file(DEMO_CSV, source="demo", create_cards=True)
    count = PricePoint.objects.count()
    second = import_price_file(DEMO_CSV, source="demo", create_cards=True)

    assert first.created == count == 9161
    assert Card.objects.count() == 21
    assert (second.created, second.updated, second.unchanged) == (0, 0, 9161)
    assert PricePoint.objects.count() == count


def test_if_one_row_among_thousands_is_bad_then_nothing_is_written_and_line_named(
    db, tmp_path: Path
) -> None:
    lines = DEMO_CSV.read_text(encoding="utf-8").splitlines()
    card_id, day, _price, *rest = lines[5000].split(",")
    lines[5000] = ",".join([card_id, day, "-3.50", *rest])  # file line 5001
    path = write_csv(tmp_path, "\n".join(lines) + "\n")

    with pytest.raises(CSVImportError) as error:
        import_price_file(path, create_cards=True)

    assert "line 5001: market_price: '-3.50' must be a positive price" in error.value.detail
    assert PricePoint.objects.count() == 0
    assert Card.objects.count() == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a,2026-02-30,1.00", "line 2: date: '2026-02-30' is not a YYYY-MM-DD date"),
        ("a,26-01-01,1.00", "line 2: date: '26-01-01' is not a YYYY-MM-DD date"),
        ("a,2026-01-01,abc", "line 2: market_price: 'abc' is not a number"),
        ("a,2026-01-01,0", "line 2: market_price: '0' must be a positive price"),
        ("a,2026-01-01,NaN", "line 2: market_price: 'NaN' must be a positive price"),
        ("a,2026-01-01,", "line 2: market_price: '' is not a number"),
        (",2026-01-01,1.00", "line 2: card_id: empty"),
        ("A B,2026-01-01,1.00", "line 2: card_id: 'A B' is not a lowercase slug"),
        ("a,2026-01-01,1.00,EURO", "line 2: currency: 'EURO' is not a 3-letter code"),
        ("a,2026-01-01,1.00,USD,x,y,extra", "line 2: too many fields"),
    ],
)
def test_if_a_field_is_bad_then_error_names_line_and_field(row: str, message: str) -> None:
    text = "card_id,date,market_price,currency,card_name,set_name\n" + row + "\n"
    with pytest.raises(CSVImportError) as error:
        parse_price_csv(io.StringIO(text))
    assert message in error.value.detail


def test_if_a_required_column_is_missing_then_header_is_blamed() -> None:
    with pytest.raises(CSVImportError, match="line 1: missing column.*market_price"):
        parse_price_csv(io.StringIO("card_id,date,price\na,2026-01-01,1\n"))


def test_if_file_is_empty_then_error_says_so() -> None:
    with pytest.raises(CSVImportError, match="empty"):
        parse_price_csv(io.StringIO(""))


def test_if_duplicate_key_has_conflicting_prices_then_both_lines_named() -> None:
    text = "card_id,date,market_price\na,2026-01-01,1.00\nb,2026-01-01,2\na,2026-01-01,1.50\n"
    with pytest.raises(CSVImportError) as error:
        parse_price_csv(io.StringIO(text))
    assert "line 4: market_price: a on 2026-01-01 is 1.50 here but 1.00 on line 2" in str(
        error.value
    )


def test_duplicate_key_with_the_same_price_is_accepted_once() -> None:
    text = "card_id,date,market_price\na,2026-01-01,1.00\na,2026-01-01,1.0\n"
    assert len(parse_price_csv(io.StringIO(text)).rows) == 1


def test_if_card_is_unknown_without_create_cards_then_its_first_line_is_named(
    make_card, tmp_path: Path
) -> None:
    make_card(card_id="known")
    path = write_csv(
        tmp_path,
        "card_id,date,market_price\nknown,2026-01-01,1\nghost,2026-01-01,2\nghost,2026-01-02,3\n",
    )
    with pytest.raises(CSVImportError) as error:
        import_price_file(path)
    assert "line 3: card_id: unknown card 'ghost'" in error.value.detail
    assert PricePoint.objects.count() == 0


def test_create_cards_takes_name_and_set_from_the_file(db, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "card_id,date,market_price,currency,card_name,set_name\n"
        "x-1-sealed,2026-01-01,10.5,usd,Booster Box,Set One\n",
    )
    result = import_price_file(path, create_cards=True, source="manual")
    card = Card.objects.get(card_id="x-1-sealed")
    assert (card.name, card.set_name, card.category) == ("Booster Box", "Set One", "sealed")
    assert result.cards_created == 1
    assert PricePoint.objects.get().currency == "USD"


def test_many_errors_are_summarised(db) -> None:
    text = "card_id,date,market_price\n" + "a,bad,1\n" * 50
    with pytest.raises(CSVImportError) as error:
        parse_price_csv(io.StringIO(text))
    assert "50 problem(s)" in error.value.detail
    assert "… and 30 more" in error.value.detail


def test_if_file_is_not_utf8_then_error_is_clear(db, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("card_id,date,market_price\nPokémon,2026-01-01,1\n".encode("latin-1"))
    with pytest.raises(CSVImportError, match="utf-8"):
        import_price_file(path)


def test_if_file_is_missing_then_error_names_it(db, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot read"):
        import_price_file(tmp_path / "nope.csv")
