from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import StringIO

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from pipelines.data import load_price_frame
from pipelines.publishing import publish
from pipelines.scoring import score
from prices.ingestion import score_new_prices, upsert_prices
from prices.models import Prediction, PricePoint
from prices.sources.base import PriceRow


@pytest.fixture
def priced_card(make_card, make_prices):
    card = make_card(card_id="a")
    make_prices(card, [10 + (i % 5) for i in range(60)], start=date(2026, 1, 1))
    return card


def test_if_there_is_no_champion_then_nothing_is_scored(priced_card) -> None:
    result = score()
    assert result.scored == 0
    assert "no champion" in result.summary()


def test_scoring_fills_every_unscored_price_in_the_window(
    priced_card, settings, make_version
) -> None:
    settings.POKEWATCH_SERVING_WINDOW_DAYS = 30
    publish(make_version("last_price"), pd.DataFrame(columns=["card_id", "date", "fair_price"]))

    first = score()
    again = score()

    assert first.scored == 30 and again.scored == 0
    prediction = Prediction.objects.get(date=date(2026, 3, 1))
    # last_price champion: fair value is the day's own price, so a HOLD at 0 deviation
    assert (prediction.fair_price, prediction.signal, prediction.deviation) == (
        prediction.market_price,
        "HOLD",
        0.0,
    )


def test_score_command_reports_and_validates(priced_card, make_version) -> None:
    publish(make_version("ewm"), pd.DataFrame(columns=["card_id", "date", "fair_price"]))
    out = StringIO()
    call_command("score", "--since", "2026-02-20", stdout=out)
    assert "scored 10 new price(s) since 2026-02-20" in out.getvalue()
    with pytest.raises(CommandError, match="argument --since: must be a YYYY-MM-DD date"):
        call_command("score", "--since", "yesterday")


def test_price_frame_takes_one_source_per_card_and_skips_inactive_cards(
    make_card, make_prices
) -> None:
    card = make_card(card_id="a", category="grail")
    make_prices(card, [10, 20], source="one")
    make_prices(card, [12], source="two")  # same first day: never averaged with "one"
    tie = make_card(card_id="b")
    make_prices(tie, [7], source="csv")
    make_prices(tie, [8], start=date(2026, 1, 2), source="tcgcsv")  # as many: priority wins
    names = make_card(card_id="c")
    make_prices(names, [3], source="zeta")
    make_prices(names, [4], start=date(2026, 1, 2), source="alpha")  # neither listed: a-z
    make_prices(make_card(card_id="off", active=False), [5])

    frame = load_price_frame()

    series = {
        cid: rows["market_price"].tolist() for cid, rows in frame.groupby("card_id", observed=True)
    }
    assert series == {"a": [10.0, 20.0], "b": [8.0], "c": [4.0]}
    assert frame[frame["card_id"] == "a"]["category"].tolist() == ["grail", "grail"]
    assert str(frame["date"].dtype).startswith("datetime64")
    assert load_price_frame(start=date(2026, 1, 2))["market_price"].tolist() == [20.0, 8.0, 4.0]
    assert load_price_frame(card_ids=["nope"]).empty


def test_new_prices_are_scored_by_the_champion_when_ingestion_announces_them(
    priced_card, settings, make_version
) -> None:
    settings.POKEWATCH_SERVING_WINDOW_DAYS = 30
    publish(make_version("last_price"), pd.DataFrame(columns=["card_id", "date", "fair_price"]))
    score()
    day = date(2026, 3, 2)

    result = score_new_prices(upsert_prices([PriceRow("a", day, Decimal("12.00"))], source="test"))

    assert result.scored == 1
    assert Prediction.objects.filter(date=day).count() == 1


def test_if_scoring_fails_after_an_import_then_the_prices_stay(
    priced_card, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, make_version
) -> None:
    publish(make_version("last_price"), pd.DataFrame(columns=["card_id", "date", "fair_price"]))

    def broken(since: date | None = None) -> None:
        raise RuntimeError("model store unreachable")

    monkeypatch.setattr("pipelines.scoring.score", broken)
    day = date(2026, 3, 2)
    result = score_new_prices(upsert_prices([PriceRow("a", day, Decimal("12.00"))], source="test"))

    assert result.scored is None
    assert PricePoint.objects.filter(date=day).exists()
    assert "run `manage.py score` to retry" in caplog.text
