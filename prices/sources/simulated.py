"""A deterministic market simulator: plausible daily prices without any network.

Per card, on a log scale: a latent value that drifts as a random walk and steps down on
reprints, a market deviation that mean-reverts around it (AR(1)), hype spikes that decay
over days, and daily noise; about 5% of days have no price. It only ever prices its own
cards, whose ids start with ``sim-`` (:data:`PREFIX`): any other card passed to it, a real
one, is left alone, and the ingestion service refuses simulated rows for any other card.
Every card's series is a pure
function of ``(seed, card_id, category)`` and of the calendar: it is simulated from
:data:`EPOCH` whatever window is requested, so overlapping windows agree on every day.
Random numbers come from one numpy ``Generator`` per card, seeded by a stable hash, drawn
as a ``(day, stream)`` matrix so that the draws of a day never depend on the window.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from scipy.special import ndtri

from pokewatch_site.errors import InvalidInput
from prices.sources.base import CardInfo, PriceRow, SourceBatch, SourceCard

EPOCH = date(2023, 1, 1)
#: Every simulated card's id starts with this; no real card's may.
PREFIX = "sim-"
CATEGORIES = ("grail", "chase", "meta", "personal", "sealed", "other")
_RARITY = {
    "grail": "Special Illustration Rare",
    "chase": "Illustration Rare",
    "meta": "Double Rare",
    "personal": "Rare",
    "sealed": "Sealed",
    "other": "Common",
}
# Median price (USD) of a card's starting level, by category; the spread is lognormal.
_MEDIAN_PRICE = {
    "grail": 600.0,
    "sealed": 250.0,
    "chase": 80.0,
    "personal": 25.0,
    "meta": 12.0,
    "other": 6.0,
}
_LOG_MIN, _LOG_MAX = np.log(2.0), np.log(2000.0)
_N_PARAMS = 8  # per-card parameter draws, taken before the daily draws
_N_STREAMS = 8  # daily draws: latent, ar, noise, spike?, spike size, drop?, drop size, missing?
_SPIKE_P = 1 / 180  # chance of a hype spike on a given day
_DROP_P = 1 / 500  # chance of a reprint on a given day
_MISSING_P = 0.05
_CHUNK_CELLS = 1_500_000  # card-days per chunk: about 100 MB of random draws at most


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Simulated prices of some cards: row ``k`` is card ``card_index[k]`` on ``day[k]``."""

    card_ids: list[str]
    card_index: np.ndarray  # int, index into card_ids
    day: np.ndarray  # int, days since the window start
    cents: np.ndarray  # int64, >= 1


class SimulatedSource:
    """Deterministic simulated market prices for tracked cards plus ``extra_cards``."""

    name = "simulated"

    def __init__(self, seed: int = 42, extra_cards: int = 0, *, chunk_size: int = 1000) -> None:
        if extra_cards < 0:
            raise InvalidInput(f"extra_cards must be >= 0, got {extra_cards}")
        if chunk_size < 1:
            raise InvalidInput(f"chunk_size must be >= 1, got {chunk_size}")
        self.seed = int(seed)
        self.extra_cards = int(extra_cards)
        self.chunk_size = int(chunk_size)

    def extra_card_infos(self) -> list[CardInfo]:
        """The simulated cards ``sim-000001`` … added to every fetch."""
        infos = []
        for n in range(1, self.extra_cards + 1):
            category = CATEGORIES[(n - 1) % len(CATEGORIES)]
            infos.append(
                CardInfo(
                    card_id=f"{PREFIX}{n:06d}",
                    name=f"Simulated card {n}",
                    set_code="sim",
                    set_name="Simulated",
                    number=str(n),
                    rarity=_RARITY[category],
                    category=category,
                )
            )
        return infos

    def fetch(self, cards: Sequence[SourceCard], *, end: date, days: int) -> SourceBatch:
        """Prices of the simulated ones among ``cards`` and of the extra simulated cards
        for ``days`` days to ``end``; real cards get nothing."""
        start = _window_start(end, days)
        dates = [start + timedelta(days=i) for i in range(days)]
        decimals: dict[int, Decimal] = {}
        rows: list[PriceRow] = []
        # Millions of acyclic rows: pausing the cyclic GC meanwhile saves about a third.
        with _gc_paused():
            for chunk in self._chunks(cards, end, days):
                rows.extend(self._rows(chunk, dates, decimals))
        return SourceBatch(rows=rows, new_cards=self.extra_card_infos())

    @staticmethod
    def _rows(chunk: _Chunk, dates: list[date], decimals: dict[int, Decimal]) -> list[PriceRow]:
        unique, inverse = np.unique(chunk.cents, return_inverse=True)
        for c in unique.tolist():
            if c not in decimals:
                decimals[c] = Decimal(c).scaleb(-2)  # exactly two places, like quantize
        prices = np.array([decimals[c] for c in unique.tolist()], dtype=object)[inverse]
        ids = np.array(chunk.card_ids, dtype=object)[chunk.card_index]
        days = np.array(dates, dtype=object)[chunk.day]
        return list(map(PriceRow, ids.tolist(), days.tolist(), prices.tolist()))

    def iter_frames(
        self, cards: Sequence[SourceCard], *, end: date, days: int
    ) -> Iterator[pd.DataFrame]:
        """Like :meth:`fetch_frame`, one frame per chunk of cards (bounded memory)."""
        start = np.datetime64(_window_start(end, days), "D")
        for chunk in self._chunks(cards, end, days):
            yield pd.DataFrame(
                {
                    "card_id": np.array(chunk.card_ids, dtype=object)[chunk.card_index],
                    "date": (start + chunk.day).astype("datetime64[ns]"),
                    "market_price": chunk.cents / 100.0,
                    "currency": "USD",
                }
            )

    def fetch_frame(self, cards: Sequence[SourceCard], *, end: date, days: int) -> pd.DataFrame:
        """All simulated prices as columns card_id, date (datetime64), market_price, currency."""
        frames = list(self.iter_frames(cards, end=end, days=days))
        if not frames:
            return pd.DataFrame(
                {
                    "card_id": pd.Series(dtype=object),
                    "date": pd.Series(dtype="datetime64[ns]"),
                    "market_price": pd.Series(dtype=float),
                    "currency": pd.Series(dtype=object),
                }
            )
        return pd.concat(frames, ignore_index=True)

    def _chunks(self, cards: Sequence[SourceCard], end: date, days: int) -> Iterator[_Chunk]:
        start = _window_start(end, days)
        wanted = {c.card_id: c.category for c in cards if is_simulated(c.card_id)}
        for info in self.extra_card_infos():
            wanted.setdefault(info.card_id, info.category)
        universe = list(wanted.items())
        n_days = (end - EPOCH).days + 1
        first = (start - EPOCH).days
        # Simulating from the epoch costs memory per day: fewer cards per chunk for late ends.
        size = max(1, min(self.chunk_size, _CHUNK_CELLS // n_days))
        for i in range(0, len(universe), size):
            part = universe[i : i + size]
            cents, present = self._simulate(part, n_days, first)
            card_index, day = np.nonzero(present.T)  # card-major: sorted by card, then day
            yield _Chunk([cid for cid, _ in part], card_index, day, cents.T[card_index, day])

    def _simulate(
        self, cards: list[tuple[str, str]], n_days: int, first: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cents and presence, both shaped (window days, cards), for days ``first`` onward."""
        n = len(cards)
        params = np.empty((_N_PARAMS, n))
        draws = np.empty((_N_STREAMS, n_days, n))
        levels = np.empty(n)
        for j, (card_id, category) in enumerate(cards):
            rng = np.random.default_rng(_card_seed(self.seed, card_id))
            params[:, j] = rng.random(_N_PARAMS)
            draws[:, :, j] = rng.random((n_days, _N_STREAMS)).T
            levels[j] = np.log(_MEDIAN_PRICE.get(category, _MEDIAN_PRICE["other"]))
        p = _normal(params[:2])
        base = np.clip(levels + 0.7 * p[0], _LOG_MIN, _LOG_MAX)
        drift = (0.04 + 0.10 * p[1]) / 365.0
        vol = 0.004 + 0.008 * params[2]
        phi = 0.90 + 0.08 * params[3]
        ar_sigma = 0.01 + 0.02 * params[4]
        noise_sigma = 0.005 + 0.02 * params[5]
        decay = 0.80 + 0.15 * params[6]

        z = _normal(draws[:3])
        spikes = np.where(draws[3] < _SPIKE_P, 0.15 + 0.6 * draws[4], 0.0)
        drops = np.where(draws[5] < _DROP_P, 0.10 + 0.35 * draws[6], 0.0)
        latent = base + np.cumsum(drift + vol * z[0] - drops, axis=0)
        deviation = np.empty((n_days, n))
        hype = np.empty((n_days, n))
        deviation[0] = ar_sigma / np.sqrt(1.0 - phi**2) * z[1, 0]
        hype[0] = spikes[0]
        innovations = ar_sigma * z[1]
        for t in range(1, n_days):  # the AR recursions, vectorised across cards
            deviation[t] = phi * deviation[t - 1] + innovations[t]
            hype[t] = decay * hype[t - 1] + spikes[t]
        log_price = (latent + deviation + hype + noise_sigma * z[2])[first:]
        cents = np.maximum(np.rint(np.exp(log_price) * 100.0), 1).astype(np.int64)
        present = draws[7, first:] >= _MISSING_P
        return cents, present


def is_simulated(card_id: str) -> bool:
    return card_id.startswith(PREFIX)


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _window_start(end: date, days: int) -> date:
    if days < 1:
        raise InvalidInput(f"days must be at least 1, got {days}")
    start = end - timedelta(days=days - 1)
    if start < EPOCH:
        raise InvalidInput(
            f"the simulator starts on {EPOCH.isoformat()}; "
            f"{days} days ending {end.isoformat()} start on {start.isoformat()}"
        )
    return start


def _card_seed(seed: int, card_id: str) -> int:
    digest = hashlib.blake2b(f"{seed}:{card_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _normal(u: np.ndarray) -> np.ndarray:
    """Standard normals from uniforms in [0, 1) by the inverse CDF."""
    return ndtri(np.clip(u, 1e-12, 1.0 - 1e-12))
