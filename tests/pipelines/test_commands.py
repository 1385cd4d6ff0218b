from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from pipelines.metrics import BASE_KEYS, METRIC_KEYS
from prices.csv_import import import_price_file
from tests.support.demo import DEMO_CSV

ESTIMATORS = {"model", "last_price", "rolling_mean_3", "rolling_median_7", "ewm"}


@pytest.fixture
def demo(db) -> None:
    import_price_file(DEMO_CSV, create_cards=True)


def test_backtest_json_has_the_contract_shape(demo) -> None:
    out = StringIO()
    call_command("backtest", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert set(result) == {"horizon", "cut", "signal_rule", "base", "estimators"}
    assert result["horizon"] == 30
    assert result["signal_rule"] == "band"
    assert len(result["cut"]) == 10
    assert set(result["base"]) == set(BASE_KEYS)
    assert set(result["estimators"]) == ESTIMATORS
    for metrics in result["estimators"].values():
        assert set(metrics) == {*METRIC_KEYS, "calibration", "rules"}
        assert set(metrics["rules"]) == {"deviation", "band"}
    model = result["estimators"]["model"]["mape"]
    assert all(model < m["mape"] for n, m in result["estimators"].items() if n != "model")


def test_backtest_table_and_horizon(demo) -> None:
    out = StringIO()
    call_command("backtest", "--horizon", "3", stdout=out)
    text = out.getvalue()
    assert "horizon 3 days" in text
    assert all(name in text for name in ESTIMATORS)
    assert "signals, rule 'band'" in text and "signals, rule 'deviation'" in text
    assert "band_coverage" in text and "base rates over all scored card-days" in text


def test_backtest_refuses_bad_horizon_and_empty_db(db) -> None:
    with pytest.raises(CommandError, match="no prices"):
        call_command("backtest")
    with pytest.raises(CommandError, match="--horizon must be between"):
        call_command("backtest", "--horizon", "0")


def test_promote_of_the_champion_says_there_is_nothing_to_do(make_version, settings) -> None:
    champion = make_version(
        "model",
        registered_name=settings.POKEWATCH_REGISTERED_MODEL,
        registered_version="1",
        is_champion=True,
    )
    out = StringIO()
    call_command("promote", "1", stdout=out)  # no CommandError: exit 0
    assert f"{champion} is already the champion: nothing to do" in out.getvalue()
    champion.refresh_from_db()
    assert champion.is_champion
