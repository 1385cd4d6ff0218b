"""Signal rules and outcomes on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.signals import (
    BAND,
    DEVIATION,
    SignalConfig,
    band_signal,
    deviation,
    outcomes,
    signal_for,
    signals,
)


def test_signal_for_applies_inclusive_thresholds() -> None:
    dev = np.array([-0.5, -0.10, -0.0999, 0.0, 0.1499, 0.15, 0.9, np.nan])
    assert signal_for(dev).tolist() == [
        "BUY",
        "BUY",
        "HOLD",
        "HOLD",
        "HOLD",
        "SELL",
        "SELL",
        "HOLD",
    ]
    assert signal_for(dev, buy=0.05, sell=0.05).tolist()[2:5] == ["BUY", "HOLD", "SELL"]
    assert signal_for(-0.2).tolist() == ["BUY"]


def test_deviation_is_relative_to_fair_value() -> None:
    np.testing.assert_allclose(deviation([90.0, 120.0], [100.0, 100.0]), [-0.1, 0.2])
    assert np.isnan(deviation([1.0], [0.0])[0])


def test_band_signal_is_strictly_outside_the_band() -> None:
    market = [89.0, 90.0, 100.0, 110.0, 111.0, 50.0]
    low = [90.0, 90.0, 90.0, 90.0, 90.0, np.nan]
    high = [110.0, 110.0, 110.0, 110.0, 110.0, np.nan]
    assert band_signal(market, low, high).tolist() == [
        "BUY",
        "HOLD",
        "HOLD",
        "HOLD",
        "SELL",
        "HOLD",  # no band: no signal
    ]


def test_signals_follow_the_configured_rule() -> None:
    # market 80 against fair 100 (deviation -0.2) but inside a wide band 70..130
    args = ([80.0], [100.0], [70.0], [130.0])
    assert signals(*args, SignalConfig(rule=DEVIATION)).tolist() == ["BUY"]
    assert signals(*args, SignalConfig(rule=BAND)).tolist() == ["HOLD"]


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown signal rule"):
        SignalConfig(rule="vibes")


def test_outcomes_use_the_design_definitions() -> None:
    # BUY right when realised >= market / 0.9 (111.11 for 100); SELL when <= 100 / 1.15.
    market = [100.0, 100.0, 100.0, 100.0, 100.0]
    realised = [111.12, 111.0, 86.95, 87.0, np.nan]
    got = outcomes(market, realised, SignalConfig(buy_threshold=0.10, sell_threshold=0.15))
    assert got["rose"].tolist() == [True, False, False, False, False]
    assert got["fell"].tolist() == [False, False, True, False, False]
    assert got["up"].tolist() == [True, True, False, False, False]
    assert got["down"].tolist() == [False, False, True, True, False]
    np.testing.assert_allclose(got["ret"][:4], [0.1112, 0.11, -0.1305, -0.13])
    assert np.isnan(got["ret"][4])
