"""A corrected price is predicted again (pipelines/scoring.py), and every endpoint then
agrees with the corrected price: cards list and detail, fair-price, signals."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command
from django.test import Client

from pipelines.publishing import publish
from pipelines.scoring import score
from prices import caching
from prices.csv_import import import_price_file
from prices.models import Prediction

START = date(2026, 1, 1)
DAYS = 60
LAST = START + timedelta(days=DAYS - 1)


def write_prices(path: Path, last_price: str) -> Path:
    """60 days of card "a", the last one at ``last_price``."""
    lines = ["card_id,date,market_price"]
    for i in range(DAYS - 1):
        lines.append(f"a,{START + timedelta(days=i)},{400 + (i % 7)}.00")
    lines.append(f"a,{LAST},{last_price}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def scored_card(
    make_card, make_version, settings, tmp_path: Path, django_capture_on_commit_callbacks
):
    """Card "a" priced 60 days (415.00 on the last), every day predicted by an EWM champion."""
    settings.POKEWATCH_SERVING_WINDOW_DAYS = DAYS
    make_card(card_id="a")
    import_price_file(write_prices(tmp_path / "first.csv", "415.00"))
    with django_capture_on_commit_callbacks(execute=True):
        publish(make_version("ewm"), pd.DataFrame(columns=["card_id", "date", "fair_price"]))
        score()
    assert Prediction.objects.get(date=LAST).market_price == Decimal("415.00")
    return tmp_path


def read_everything(api: Client) -> dict[str, dict]:
    listed = api.get("/api/v1/cards/").json()["results"]
    return {
        "list": next(card for card in listed if card["card_id"] == "a"),
        "detail": api.get("/api/v1/cards/a/").json(),
        "fair": api.get("/api/v1/cards/a/fair-price/").json(),
        "signal": api.get("/api/v1/signals/").json()["results"][0],
    }


def test_a_reimported_correction_is_predicted_again_and_every_endpoint_agrees(
    scored_card: Path, api: Client, django_capture_on_commit_callbacks
) -> None:
    before = read_everything(api)  # cached now: the correction must make these unreachable
    generation = caching.current_generation()
    with django_capture_on_commit_callbacks(execute=True):
        result = import_price_file(write_prices(scored_card / "fixed.csv", "417.00"))

    assert (result.created, result.updated, result.scored) == (0, 1, 1)
    assert "1 updated" in result.summary() and "1 new predictions" in result.summary()
    assert caching.current_generation() > generation
    after = read_everything(api)
    fair = Decimal(after["fair"]["fair_price"])
    deviation = after["fair"]["deviation_pct"]
    # The deviation is the corrected market's (up to the rounding of the fair price shown).
    assert abs(deviation - float((Decimal("417.00") - fair) / fair) * 100) < 0.01
    assert deviation != before["fair"]["deviation_pct"]
    assert before["fair"]["market_price"] == "415.00"
    assert after["fair"]["market_price"] == after["signal"]["market_price"] == "417.00"
    for card in (after["list"], after["detail"]):
        assert card["latest_market_price"] == "417.00"
        assert (card["fair_price"], card["deviation_pct"]) == (
            after["fair"]["fair_price"],
            deviation,
        )
    assert after["signal"]["deviation_pct"] == deviation
    assert Prediction.objects.filter(date=LAST).count() == 1


def test_if_scoring_failed_after_a_correction_then_score_repairs_it(
    scored_card: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr("pipelines.scoring.score", lambda since=None: 1 / 0)
        result = import_price_file(write_prices(scored_card / "fixed.csv", "417.00"))
    assert result.scored is None
    assert Prediction.objects.get(date=LAST).market_price == Decimal("415.00")  # stale

    out = StringIO()
    call_command("score", stdout=out)

    assert "(1 of them corrected prices, predicted again)" in out.getvalue()
    assert Prediction.objects.get(date=LAST).market_price == Decimal("417.00")


def test_an_unchanged_reimport_replaces_nothing(scored_card: Path) -> None:
    kept = Prediction.objects.get(date=LAST).pk
    result = import_price_file(write_prices(scored_card / "same.csv", "415.00"))
    assert (result.updated, result.unchanged, result.scored) == (0, DAYS, 0)
    assert Prediction.objects.get(date=LAST).pk == kept
