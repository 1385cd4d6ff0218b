from __future__ import annotations

from pipelines.gate import GateConfig, decide


def metrics(mape: float | None, coverage: float = 1.0) -> dict:
    return {"mape": mape, "coverage": coverage}


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
