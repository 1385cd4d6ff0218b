"""BUY / HOLD / SELL: the two signal rules of DESIGN.md section 4, and what makes one right.

Plain numpy, no Django. A signal compares today's market price with the fair value of the
coming H-day median and its band:

- ``deviation``: BUY when (market - fair) / fair <= -buy threshold, SELL when
  >= sell threshold, else HOLD;
- ``band``: BUY when the market is below ``fair_low`` (the model is ~90 % sure the coming
  median is higher), SELL when it is above ``fair_high``, else HOLD.

A signal is *right* when the realised median shows the market really was that far off:
a BUY when realised >= market / (1 - buy threshold), a SELL when
realised <= market / (1 + sell threshold). It is a *hit* when the realised median moved
the signalled way at all (above the market for BUY, below for SELL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BUY, HOLD, SELL = "BUY", "HOLD", "SELL"
DEVIATION, BAND = "deviation", "band"
RULES: tuple[str, ...] = (DEVIATION, BAND)


@dataclass(frozen=True)
class SignalConfig:
    """Which rule turns fair values into signals, and the deviation thresholds."""

    rule: str = BAND
    buy_threshold: float = 0.10
    sell_threshold: float = 0.15

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown signal rule {self.rule!r}; expected one of {RULES}")

    @classmethod
    def from_settings(cls, rule: str | None = None) -> SignalConfig:
        from django.conf import settings

        return cls(
            rule=rule or settings.POKEWATCH_SIGNAL_RULE,
            buy_threshold=settings.POKEWATCH_BUY_THRESHOLD,
            sell_threshold=settings.POKEWATCH_SELL_THRESHOLD,
        )

    def with_rule(self, rule: str) -> SignalConfig:
        return SignalConfig(rule, self.buy_threshold, self.sell_threshold)


def deviation(market: Any, fair: Any) -> np.ndarray:
    """(market - fair) / fair, NaN where fair is missing or not positive."""
    m = np.asarray(market, dtype=float)
    f = np.asarray(fair, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(f) & (f > 0), (m - f) / f, np.nan)


def signal_for(deviation: Any, buy: float = 0.10, sell: float = 0.15) -> np.ndarray:
    """The ``deviation`` rule: BUY when deviation <= -buy, SELL when >= sell, else HOLD."""
    d = np.atleast_1d(np.asarray(deviation, dtype=float))
    out = np.full(d.shape, HOLD, dtype=object)
    out[d <= -buy] = BUY
    out[d >= sell] = SELL
    return out


def band_signal(market: Any, low: Any, high: Any) -> np.ndarray:
    """The ``band`` rule: BUY below ``low``, SELL above ``high``, else (or no band) HOLD."""
    m = np.atleast_1d(np.asarray(market, dtype=float))
    lo = np.atleast_1d(np.asarray(low, dtype=float))
    hi = np.atleast_1d(np.asarray(high, dtype=float))
    out = np.full(m.shape, HOLD, dtype=object)
    with np.errstate(invalid="ignore"):
        out[np.isfinite(lo) & (m < lo)] = BUY
        out[np.isfinite(hi) & (m > hi)] = SELL
    return out


def signals(market: Any, fair: Any, low: Any, high: Any, config: SignalConfig) -> np.ndarray:
    """BUY / HOLD / SELL for every row under ``config.rule``."""
    if config.rule == BAND:
        return band_signal(market, low, high)
    return signal_for(deviation(market, fair), config.buy_threshold, config.sell_threshold)


def outcomes(market: Any, realised: Any, config: SignalConfig) -> dict[str, np.ndarray]:
    """What happened after each card-day, whatever was signalled.

    ``rose`` / ``fell``: a BUY / SELL would have been right; ``up`` / ``down``: the
    realised median ended above / below the market; ``ret``: realised / market - 1.
    Rows without a realised median are False / NaN.
    """
    m = np.asarray(market, dtype=float)
    r = np.asarray(realised, dtype=float)
    ok = np.isfinite(r) & np.isfinite(m) & (m > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(ok, r / m - 1.0, np.nan)
        rose = ok & (r >= m / (1.0 - config.buy_threshold))
        fell = ok & (r <= m / (1.0 + config.sell_threshold))
    return {"rose": rose, "fell": fell, "up": ok & (r > m), "down": ok & (r < m), "ret": ret}
