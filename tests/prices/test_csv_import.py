from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

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


# --- strict input (issue 13): every case names its line and field ---------------------


def csv_error(text: str) -> str:
    """The detail of the error that parsing ``text`` raises."""
    with pytest.raises(CSVImportError) as error:
        parse_price_csv(io.StringIO(text))
    return error.value.detail


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a,2026-W40-1,1.00", "line 2: date: '2026-W40-1' is not a YYYY-MM-DD date"),
        ("a,2026-280,1.00", "line 2: date: '2026-280' is not a YYYY-MM-DD date"),
        ("a,20261001,1.00", "line 2: date: '20261001' is not a YYYY-MM-DD date"),
        ("a,2026-01-01,1_000", "line 2: market_price: '1_000' is not a number"),
        ("a,2026-01-01,1e3", "line 2: market_price: '1e3' is not a number"),
        ('a,2026-01-01,"1,000"', "line 2: market_price: '1,000' is not a number"),
        ("a,2026-01-01,+5", "line 2: market_price: '+5' must be a positive price"),
        ("a,2026-01-01,Infinity", "line 2: market_price: 'Infinity' must be a positive price"),
        ("a,2026-01-01," + "9" * 40, "must be a positive price, at most 9999999999.99"),
    ],
)
def test_only_calendar_dates_and_plain_decimals_are_accepted(row: str, message: str) -> None:
    assert message in csv_error("card_id,date,market_price\n" + row + "\n")


def test_a_date_after_tomorrow_is_refused_and_tomorrow_accepted() -> None:
    today = timezone.localdate()
    tomorrow, later = today + timedelta(days=1), today + timedelta(days=2)
    text = f"card_id,date,market_price\na,{tomorrow},1.00\na,{later},1.00\nb,2099-01-01,2\n"
    detail = csv_error(text)
    assert f"line 3: date: {later} is in the future (the latest day accepted is {tomorrow})" in (
        detail
    )
    assert "line 4: date: 2099-01-01 is in the future" in detail
    assert "line 2" not in detail
    assert parse_price_csv(io.StringIO(f"card_id,date,market_price\na,{tomorrow},1\n")).rows


def test_a_card_stays_in_one_currency_within_the_file() -> None:
    text = (
        "card_id,date,market_price,currency\n"
        "a,2026-01-01,1.00,USD\n"
        "a,2026-01-02,1.00,EUR\n"
        "b,2026-01-01,1.00,EUR\n"
    )
    detail = csv_error(text)
    assert "line 3: currency: a is priced in USD on line 2; one currency per card, got EUR" in (
        detail
    )
    assert "1 problem(s)" in detail  # another card in another currency is fine


def test_a_card_stays_in_the_currency_of_its_stored_prices(make_card, tmp_path: Path) -> None:
    make_card(card_id="a")
    import_price_file(write_csv(tmp_path, "card_id,date,market_price\na,2026-01-01,1.00\n"))
    path = write_csv(tmp_path, "card_id,date,market_price,currency\na,2026-01-02,0.90,EUR\n")
    with pytest.raises(CSVImportError) as error:
        import_price_file(path)
    assert (
        "line 2: currency: a is priced in USD in the database; one currency per card, got EUR"
        in error.value.detail
    )
    assert PricePoint.objects.count() == 1


def test_names_longer_than_their_columns_are_refused() -> None:
    text = "card_id,date,market_price,card_name,set_name\n" + f"a,2026-01-01,1,{'x' * 5000},S\n"
    assert "line 2: card_name: 5,000 characters, at most 200" in csv_error(text)
    long_id = "a" * 101
    assert "line 2: card_id: 'aaaa" in csv_error(
        f"card_id,date,market_price\n{long_id},2026-01-01,1\n"
    )


def test_a_utf8_byte_order_mark_is_accepted(make_card, tmp_path: Path) -> None:
    make_card(card_id="a")
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfcard_id,date,market_price\r\na,2026-01-01,1.00\r\n")
    result = import_price_file(path)
    assert result.created == 1
    # Already decoded (a BOM left in the text): the header still reads as card_id.
    assert parse_price_csv(io.StringIO("\ufeffcard_id,date,market_price\na,2026-01-01,1\n")).rows


def test_a_header_only_file_imports_nothing_on_every_database(make_card, tmp_path: Path) -> None:
    result = import_price_file(write_csv(tmp_path, "card_id,date,market_price\n"))
    assert (result.received, result.created, result.first_date) == (0, 0, None)
    assert "0 prices" in result.summary()


def test_format_errors_and_unknown_cards_are_reported_in_one_pass(
    make_card, tmp_path: Path
) -> None:
    make_card(card_id="known")
    path = write_csv(
        tmp_path,
        "card_id,date,market_price\n"
        "known,2026-01-01,abc\n"
        "ghost,2026-01-01,1\n"
        "known,2026-13-01,1\n"
        "spook,2026-01-01,1_0\n",
    )
    with pytest.raises(CSVImportError) as error:
        import_price_file(path)
    assert error.value.errors == [
        "line 2: market_price: 'abc' is not a number (a plain decimal like 412.50)",
        "line 3: card_id: unknown card 'ghost' (add it to config/cards.yaml and run "
        "import_cards, or pass --create-cards)",
        "line 4: date: '2026-13-01' is not a YYYY-MM-DD date",
        "line 5: market_price: '1_0' is not a number (a plain decimal like 412.50)",
        "line 5: card_id: unknown card 'spook' (add it to config/cards.yaml and run "
        "import_cards, or pass --create-cards)",
    ]


def test_an_import_is_all_or_nothing(make_card, tmp_path: Path) -> None:
    make_card(card_id="a")
    path = write_csv(
        tmp_path, "card_id,date,market_price\na,2026-01-01,1.00\na,2026-01-02,2099.00\nb,x,1\n"
    )
    with pytest.raises(CSVImportError, match="line 4"):
        import_price_file(path)
    assert PricePoint.objects.count() == 0
