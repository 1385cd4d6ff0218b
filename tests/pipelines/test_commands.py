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


# --- drift -----------------------------------------------------------------------------


def test_drift_shows_the_latest_report_of_each_kind(make_drift_report) -> None:
    from datetime import timedelta

    from django.utils import timezone

    make_drift_report("training", computed_at=timezone.now() - timedelta(days=1), threshold=0.9)
    make_drift_report("training")
    make_drift_report("scoring", drifted_count=0)

    out = StringIO()
    call_command("drift", stdout=out)
    text = out.getvalue()

    assert text.count("training drift #") == 1 and text.count("scoring drift #") == 1
    assert "1 of 24 drifted at PSI > 0.2" in text and "PSI > 0.9" not in text
    assert "current 2026-08-05 … 2026-08-18 (84 rows)" in text
    lines = text.splitlines()
    table = lines[lines.index(next(line for line in lines if line.strip().startswith("feature"))) :]
    assert table[1].split() == ["vol_h", "0.3500", "0.2100", "drifted"]  # largest PSI first
    assert len([line for line in lines if line.endswith("drifted")]) == 2  # one per report

    out = StringIO()
    call_command("drift", "--json", stdout=out)
    reports = json.loads(out.getvalue())
    assert [r["kind"] for r in reports] == ["training", "scoring"]
    assert reports[0]["features"]["vol_h"] == {"psi": 0.35, "ks": 0.21, "drifted": True}
    assert reports[0]["drifted"] == ["vol_h"] and reports[0]["current"]["rows"] == 84


def test_drift_compute_writes_todays_scoring_report(
    make_card, make_prices, make_version, ml_stores
) -> None:
    from datetime import date

    import pandas as pd

    from pipelines.models import DriftReport
    from pipelines.publishing import publish

    for number in range(3):
        make_prices(make_card(), [10 + number + (i % 7) * 0.1 for i in range(300)])
    champion = make_version("last_price", data_start=date(2026, 1, 1), data_end=date(2026, 9, 1))
    publish(champion, pd.DataFrame(columns=["card_id", "date", "fair_price"]))

    out = StringIO()
    call_command("drift", "--compute", stdout=out)

    report = DriftReport.objects.get()
    assert (report.kind, report.model_version, report.current_end) == (
        "scoring",
        champion,
        date(2026, 10, 27),
    )
    assert f"scoring drift #{report.pk}" in out.getvalue()
    assert report.mlflow_run_id


def test_drift_says_when_there_is_nothing_to_show(db) -> None:
    out = StringIO()
    call_command("drift", "--compute", stdout=out)
    assert "nothing to compare: no champion with a data window, or no prices" in out.getvalue()
    assert "no drift report yet" in out.getvalue()
