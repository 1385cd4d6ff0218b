from __future__ import annotations

from pipelines.gate import GateConfig, decide


def metrics(mape: float | None, coverage: float = 1.0, band: float | None = 0.8) -> dict:
    return {"mape": mape, "coverage": coverage, "band_coverage": band}


def block(model: float | None, **baselines: float) -> dict:
    result = {"model": metrics(model)}
    defaults = {"last_price": 0.05, "rolling_mean_3": 0.06, "rolling_median_7": 0.07, "ewm": 0.08}
    for name, value in {**defaults, **baselines}.items():
        result[name] = metrics(value)
    return result


def test_if_model_beats_baselines_and_no_champion_then_model_is_promoted() -> None:
    decision = decide(block(0.04), champion=None)
    assert (decision.promote, decision.estimator) == (True, "model")
    assert "best baseline last_price" in decision.reason


def test_if_model_ties_the_champion_then_it_is_promoted() -> None:
    decision = decide(block(0.04), champion=metrics(0.04))
    assert (decision.promote, decision.estimator) == (True, "model")


def test_if_model_is_worse_than_champion_then_it_is_rejected() -> None:
    decision = decide(block(0.045), champion=metrics(0.04))
    assert (decision.promote, decision.estimator) == (False, None)
    assert "worse than the champion's 0.0400" in decision.reason


def test_tolerance_lets_a_slightly_worse_model_through() -> None:
    decision = decide(block(0.041), champion=metrics(0.04), config=GateConfig(mape_tolerance=0.05))
    assert decision.estimator == "model"


def test_if_model_loses_to_a_baseline_without_champion_then_best_baseline_is_published() -> None:
    decision = decide(block(0.06), champion=None)
    assert (decision.promote, decision.estimator) == (True, "last_price")
    assert "worse than the best baseline last_price" in decision.reason


def test_if_model_and_baselines_lose_to_the_champion_then_nothing_changes() -> None:
    decision = decide(block(0.06), champion=metrics(0.03))
    assert (decision.promote, decision.estimator) == (False, None)


def test_if_coverage_is_too_low_then_model_fails_the_gate() -> None:
    estimators = block(0.01)
    estimators["model"]["coverage"] = 0.9
    decision = decide(estimators, champion=metrics(0.001))
    assert not decision.promote
    assert "coverage 0.900 is below 0.95" in decision.reason


def test_if_model_has_no_predictions_then_it_fails() -> None:
    decision = decide(block(None), champion=None)
    assert decision.estimator == "last_price"
    assert "no out-of-sample predictions" in decision.reason


def test_if_the_model_band_covers_too_little_then_it_fails_the_gate() -> None:
    estimators = block(0.01)
    estimators["model"]["band_coverage"] = 0.62
    decision = decide(estimators, champion=metrics(0.07))
    assert decision.estimator == "last_price"  # better than the champion, band calibrated
    assert "model band coverage 0.620 is outside 0.70-0.90" in decision.reason


def test_if_the_model_band_covers_too_much_then_it_fails_the_gate() -> None:
    estimators = block(0.01)
    estimators["model"]["band_coverage"] = 0.97
    decision = decide(estimators, champion=metrics(0.001))
    assert not decision.promote
    assert "band coverage 0.970 is outside" in decision.reason


def test_band_limits_are_configurable_and_inclusive() -> None:
    estimators = block(0.01)
    estimators["model"]["band_coverage"] = 0.6
    config = GateConfig(band_coverage_min=0.6, band_coverage_max=0.65)
    assert decide(estimators, champion=None, config=config).estimator == "model"


def test_a_baseline_without_a_calibrated_band_is_never_the_fallback() -> None:
    estimators = block(0.06)  # the model loses on MAPE
    estimators["last_price"]["band_coverage"] = 0.5
    estimators["rolling_mean_3"]["band_coverage"] = None
    decision = decide(estimators, champion=None)
    assert decision.estimator == "rolling_median_7"  # the best baseline whose band passes
    assert "band coverage 0.800" in decision.reason


def test_if_no_baseline_has_a_calibrated_band_then_nothing_is_promoted() -> None:
    estimators = block(0.06)
    for name in ("last_price", "rolling_mean_3", "rolling_median_7", "ewm"):
        estimators[name]["band_coverage"] = 0.99
    decision = decide(estimators, champion=None)
    assert (decision.promote, decision.estimator) == (False, None)
