"""The quality gate: which estimator, if any, may replace the champion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

BASELINES = ("last_price", "rolling_mean_3", "rolling_median_7", "ewm")
MODEL = "model"


@dataclass(frozen=True)
class GateConfig:
    min_coverage: float = 0.95
    mape_tolerance: float = 0.0  # relative slack against the champion's MAPE
    band_coverage_min: float = 0.70  # share of realised medians inside the band
    band_coverage_max: float = 0.90

    @classmethod
    def from_settings(cls) -> GateConfig:
        return cls(
            min_coverage=settings.POKEWATCH_GATE_MIN_COVERAGE,
            mape_tolerance=settings.POKEWATCH_GATE_MAPE_TOLERANCE,
            band_coverage_min=settings.POKEWATCH_GATE_BAND_COVERAGE_MIN,
            band_coverage_max=settings.POKEWATCH_GATE_BAND_COVERAGE_MAX,
        )


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    estimator: str | None  # the estimator to publish when promote is True
    reason: str


def band_failure(name: str, metrics: dict[str, Any], config: GateConfig) -> str | None:
    """Why ``name``'s band is not calibrated enough to publish, or ``None`` if it is."""
    band = metrics.get("band_coverage")
    if band is None:
        return f"{name} has no band"
    if not config.band_coverage_min <= band <= config.band_coverage_max:
        return (
            f"{name} band coverage {band:.3f} is outside "
            f"{config.band_coverage_min:.2f}-{config.band_coverage_max:.2f}"
        )
    return None


def decide(
    estimators: dict[str, dict[str, Any]],
    champion: dict[str, Any] | None,
    config: GateConfig | None = None,
) -> GateDecision:
    """Decide from walk-forward metrics (the ``estimators`` block of the backtest JSON).

    The model is promoted when its MAPE is no worse than the best baseline's and the
    champion's (within the tolerance), its coverage is at least ``min_coverage`` and its
    band coverage is inside ``band_coverage_min``-``band_coverage_max``. If the model
    fails, the most accurate baseline whose band passes is promoted instead, but only
    when it is itself better than the champion (or there is no champion): never ship
    something worse.
    """
    config = config or GateConfig()
    best_name, best = _best_baseline(estimators)
    model = estimators.get(MODEL)
    champion_mape = champion.get("mape") if champion else None

    failures = []
    if model is None or model.get("mape") is None:
        failures.append("the model produced no out-of-sample predictions")
    else:
        if best is not None and model["mape"] > best["mape"]:
            failures.append(
                f"model MAPE {model['mape']:.4f} is worse than the best baseline "
                f"{best_name} ({best['mape']:.4f})"
            )
        if champion_mape is not None and model["mape"] > champion_mape * (
            1 + config.mape_tolerance
        ):
            failures.append(
                f"model MAPE {model['mape']:.4f} is worse than the champion's {champion_mape:.4f}"
            )
        if (model.get("coverage") or 0.0) < config.min_coverage:
            failures.append(
                f"model coverage {model.get('coverage') or 0.0:.3f} is below "
                f"{config.min_coverage:.2f}"
            )
        band = band_failure("model", model, config)
        if band:
            failures.append(band)
    if model is not None and not failures:
        versus = f"; champion {champion_mape:.4f}" if champion_mape is not None else ""
        best_text = f" <= best baseline {best_name} {best['mape']:.4f}" if best else ""
        return GateDecision(
            True,
            MODEL,
            f"model MAPE {model['mape']:.4f}{best_text}{versus}; coverage "
            f"{model['coverage']:.3f}; band coverage {model['band_coverage']:.3f}",
        )

    why = "; ".join(failures)
    fallback_name, fallback = _best_baseline(estimators, band_ok=config)
    if fallback is not None and (champion_mape is None or fallback["mape"] < champion_mape):
        return GateDecision(
            True,
            fallback_name,
            f"{why}; publishing the best baseline with a calibrated band, {fallback_name} "
            f"(MAPE {fallback['mape']:.4f}, band coverage {fallback['band_coverage']:.3f}) "
            "instead, as it beats the "
            + ("absent champion" if champion_mape is None else f"champion's {champion_mape:.4f}"),
        )
    return GateDecision(False, None, f"rejected: {why}; the champion stays")


def _best_baseline(
    estimators: dict[str, dict[str, Any]], band_ok: GateConfig | None = None
) -> tuple[str | None, dict[str, Any] | None]:
    """The baseline with the lowest MAPE (among those whose band passes, with ``band_ok``)."""
    scored = [
        (metrics["mape"], name)
        for name, metrics in estimators.items()
        if name in BASELINES
        and metrics.get("mape") is not None
        and (band_ok is None or band_failure(name, metrics, band_ok) is None)
    ]
    if not scored:
        return None, None
    _, name = min(scored)
    return name, estimators[name]
