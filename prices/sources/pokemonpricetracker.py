"""A client for the Pokemon Price Tracker API v2 (https://www.pokemonpricetracker.com).

Cards with a TCGplayer id are fetched one request each (``tcgPlayerId=``); cards that only
have a set code and a Pokemon Price Tracker id are fetched one request per set (``setId=``).
Retries (429/5xx, connection errors, read timeouts) are done by urllib3's ``Retry``;
whatever still fails becomes :class:`SourceUnavailable` (transient) or :class:`SourceError`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pokewatch_site.errors import InvalidInput, SourceError, SourceUnavailable
from prices.sources.base import PriceRow, SourceBatch, SourceCard

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.pokemonpricetracker.com/api/v2"
_CENT = Decimal("0.01")
_NAME = "Pokemon Price Tracker"


class PokemonPriceTrackerSource:
    """Market prices and price history from the Pokemon Price Tracker API."""

    name = "pokemonpricetracker"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | tuple[float, float] = 10.0,
        max_retries: int = 4,
        backoff_factor: float = 1.0,
        backoff_max: float = 30.0,
        retry_after_max: int = 120,
        session: requests.Session | None = None,
    ) -> None:
        self.api_key = (api_key or "").strip()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        retry = Retry(
            total=max_retries,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            retry_after_max=retry_after_max,
            status_forcelist=(429, 500, 502, 503, 504),
            respect_retry_after_header=True,
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
        )
        self.session = session or requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    @classmethod
    def from_settings(cls) -> PokemonPriceTrackerSource:
        from django.conf import settings

        return cls(
            settings.POKEMON_PRICE_TRACKER_API_KEY,
            base_url=settings.POKEMON_PRICE_TRACKER_BASE_URL or DEFAULT_BASE_URL,
            timeout=float(settings.POKEMON_PRICE_TRACKER_TIMEOUT),
            max_retries=int(settings.POKEMON_PRICE_TRACKER_MAX_RETRIES),
        )

    def fetch(self, cards: Sequence[SourceCard], *, end: date, days: int) -> SourceBatch:
        """Prices of ``cards`` for the ``days`` days ending on ``end``; never writes."""
        if not self.api_key:
            raise SourceError(f"{_NAME}: no API key configured; set POKEMON_PRICE_TRACKER_API_KEY.")
        if days < 1:
            raise InvalidInput(f"days must be at least 1, got {days}")
        start = end - timedelta(days=days - 1)
        batch = SourceBatch()
        by_set: dict[str, list[SourceCard]] = {}
        for card in _unique(cards):
            if card.tcgplayer_id is not None:
                item = self._fetch_one(card, days)
                if item is None:
                    batch.skipped.append(card.card_id)
                else:
                    batch.rows.extend(_rows(card.card_id, item, start, end))
            elif card.set_code and card.pricetracker_id:
                by_set.setdefault(card.set_code, []).append(card)
            else:
                batch.skipped.append(card.card_id)
        for set_code, set_cards in by_set.items():
            items = self._fetch_set(set_code, days)
            for card in set_cards:
                item = _find(items, card)
                if item is None:
                    batch.skipped.append(card.card_id)
                else:
                    batch.rows.extend(_rows(card.card_id, item, start, end))
        return batch

    def _fetch_one(self, card: SourceCard, days: int) -> dict[str, Any] | None:
        label = f"card {card.card_id} (tcgPlayerId {card.tcgplayer_id})"
        body = self._get({"tcgPlayerId": str(card.tcgplayer_id)}, days, label, missing_ok=True)
        if body is None:
            return None
        wanted = str(card.tcgplayer_id)
        for item in _items(body, label):
            if _id_text(item.get("tcgPlayerId")) == wanted:
                return item
        return None

    def _fetch_set(self, set_code: str, days: int) -> list[dict[str, Any]]:
        label = f"set {set_code}"
        return _items(self._get({"setId": set_code}, days, label, missing_ok=False), label)

    def _get(self, query: dict[str, str], days: int, label: str, *, missing_ok: bool) -> Any | None:
        url = f"{self.base_url}/cards"
        params = {**query, "includeHistory": "true", "days": str(days)}
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        try:
            response = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            what = "request timed out" if _timed_out(exc) else "connection failed"
            logger.warning("GET %s %s failed: %s (%s)", url, query, what, type(exc).__name__)
            raise SourceUnavailable(f"{_NAME}: {label}: {what} ({type(exc).__name__})") from exc
        status = response.status_code
        logger.info("GET %s %s -> HTTP %s", url, query, status)
        if status in (401, 403):
            raise SourceError(
                f"{_NAME} rejected the API key (HTTP {status}); "
                "check POKEMON_PRICE_TRACKER_API_KEY."
            )
        if status == 404 and missing_ok and _is_json(response):
            return None  # the API answered: it does not know this card
        if status == 404:
            raise SourceError(
                f"{_NAME}: {label}: HTTP 404 from {url}; check POKEMON_PRICE_TRACKER_BASE_URL."
            )
        if status == 429 or status >= 500:
            raise SourceUnavailable(f"{_NAME}: {label}: HTTP {status} after retries")
        if status != 200:
            raise SourceError(f"{_NAME}: {label}: unexpected HTTP {status}")
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(f"{_NAME}: {label}: response is not valid JSON") from exc


def _timed_out(exc: requests.RequestException) -> bool:
    """Timeouts, including read timeouts that requests reports as ConnectionError after retries."""
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason,
        urllib3.exceptions.NewConnectionError,  # a ConnectTimeoutError subclass
    )


def _is_json(response: requests.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True


def _unique(cards: Sequence[SourceCard]) -> list[SourceCard]:
    return list({card.card_id: card for card in cards}.values())


def _id_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    return str(value).strip()


def _items(body: Any, label: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or "data" not in body:
        raise SourceError(f"{_NAME}: {label}: response has no 'data' field")
    data = body["data"]
    if data is None:
        return []
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SourceError(f"{_NAME}: {label}: 'data' must be an object or a list of objects")
    return items


def _find(items: list[dict[str, Any]], card: SourceCard) -> dict[str, Any] | None:
    wanted = card.pricetracker_id.strip()
    for item in items:
        if wanted in (_id_text(item.get("id")), _id_text(item.get("tcgPlayerId"))):
            return item
    return None


def _rows(card_id: str, item: dict[str, Any], start: date, end: date) -> list[PriceRow]:
    """History inside [start, end] plus ``prices.market`` on ``end`` (which wins)."""
    label = f"card {card_id}"
    by_day: dict[date, Decimal] = {}
    history = item.get("priceHistory")
    if history is not None:
        if not isinstance(history, dict):
            raise SourceError(f"{_NAME}: {label}: 'priceHistory' must be an object")
        for key, value in history.items():
            day = _parse_day(key, label)
            if isinstance(value, dict):
                value = value.get("market")
            price = _price(value, f"{label}: priceHistory[{key!r}]")
            if price is not None and start <= day <= end:
                by_day[day] = price
    prices = item.get("prices")
    if prices is not None:
        if not isinstance(prices, dict):
            raise SourceError(f"{_NAME}: {label}: 'prices' must be an object")
        market = _price(prices.get("market"), f"{label}: prices.market")
        if market is not None:
            by_day[end] = market
    return [PriceRow(card_id, day, by_day[day]) for day in sorted(by_day)]


def _parse_day(key: Any, label: str) -> date:
    try:
        text = str(key).strip()
        return datetime.fromisoformat(text).date() if len(text) > 10 else date.fromisoformat(text)
    except ValueError as exc:
        raise SourceError(f"{_NAME}: {label}: bad date {key!r} in priceHistory") from exc


def _price(value: Any, label: str) -> Decimal | None:
    """A positive price as Decimal cents; None for null/zero/negative; else SourceError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SourceError(f"{_NAME}: {label} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SourceError(f"{_NAME}: {label} must be a finite number, got {value!r}")
    price = Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)
    return price if price > 0 else None
