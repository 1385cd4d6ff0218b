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

    @classmethod
    def from_settings(cls) -> GateConfig:
        return cls(
            min_coverage=settings.POKEWATCH_GATE_MIN_COVERAGE,
            mape_tolerance=settings.POKEWATCH_GATE_MAPE_TOLERANCE,
        )


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    estimator: str | None  # the estimator to publish when promote is True
    reason: str


def decide(
    estimators: dict[str, dict[str, Any]],
    champion: dict[str, Any] | None,
    config: GateConfig | None = None,
) -> GateDecision:
    """Decide from walk-forward metrics (the ``estimators`` block of the backtest JSON).

    The model is promoted when its MAPE is no worse than the best baseline's and the
    champion's (within the tolerance) and its coverage is at least ``min_coverage``.
    If the model fails, the best baseline is promoted instead, but only when it is itself
    better than the champion (or there is no champion): never ship something worse.
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
    if not failures:
        versus = f"; champion {champion_mape:.4f}" if champion_mape is not None else ""
        return GateDecision(
            True,
            MODEL,
            f"model MAPE {model['mape']:.4f} <= best baseline {best_name} "  # type: ignore[index]
            f"{best['mape']:.4f}{versus}; coverage {model['coverage']:.3f}",  # type: ignore[index]
        )

    why = "; ".join(failures)
    if best is not None and (champion_mape is None or best["mape"] < champion_mape):
        return GateDecision(
            True,
            best_name,
            f"{why}; publishing the best baseline {best_name} "
            f"(MAPE {best['mape']:.4f}) instead, as it beats the "
            + ("absent champion" if champion_mape is None else f"champion's {champion_mape:.4f}"),
        )
    return GateDecision(False, None, f"rejected: {why}; the champion stays")


def _best_baseline(
    estimators: dict[str, dict[str, Any]],
) -> tuple[str | None, dict[str, Any] | None]:
    scored = [
        (metrics["mape"], name)
        for name, metrics in estimators.items()
        if name in BASELINES and metrics.get("mape") is not None
    ]
    if not scored:
        return None, None
    _, name = min(scored)
    return name, estimators[name]
