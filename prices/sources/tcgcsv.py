"""A client for tcgcsv.com: TCGplayer's catalog and market prices, free and without a key.

tcgcsv.com republishes TCGplayer's data once a day (around 20:00 UTC) as plain JSON:
``/tcgplayer/{category}/groups`` (the sets), ``/tcgplayer/{category}/{groupId}/products``
(cards and sealed products) and ``/tcgplayer/{category}/{groupId}/prices`` (today's prices). Every
past day is kept as one 7-Zip (PPMd) archive, ``/archive/tcgplayer/prices-YYYY-MM-DD.ppmd.7z``,
holding the price file ``{day}/{category}/{groupId}/prices`` of every category and group. So past
days (a backfill) come from the archives and today from the live JSON; both are parsed alike.
The live JSON is taken as the day ``/last-updated.txt`` names, never as another day's: read
before the evening refresh, it still holds yesterday's prices (:class:`DayNotPublished`).
A (productId, printing) pair is one price series: :func:`card_id_for` names it.

Archives are downloaded once into ``cache_dir``, laid out like the site (a temp file renamed into
place, never a half file under the final name). Only this category's price files are
decompressed, by a short-lived child process (``tcgcsv_archive``: pyppmd leaks), one day at a
time: memory grows neither with the archive nor with the number of days. Groups and products are
cached in ``cache_dir`` too, for ``catalog_max_age`` seconds.
Retries (429/5xx, connection errors, read timeouts) are done by urllib3's ``Retry``; whatever
still fails becomes :class:`SourceUnavailable` (transient) or :class:`SourceError`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess  # the archive reader, see TcgcsvClient._price_files  # nosec B404
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Any, TypeVar

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pokewatch_site.errors import SourceError, SourceUnavailable
from prices.sources import tcgcsv_archive

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_BASE_URL = "https://tcgcsv.com"
_NAME = "tcgcsv"
_CENT = Decimal("0.01")
_CHUNK = 1 << 20  # download chunk
# A day up to this many days back whose archive is missing may still be the live one.
LIVE_FALLBACK_DAYS = 2
_READ_TIMEOUT = 600.0  # seconds for one archive; a real day takes about 2 s
_ROOT = Path(__file__).resolve().parents[2]  # where ``python -m prices.sources...`` works


def printing_slug(sub_type_name: str) -> str:
    """``"Reverse Holofoil"`` -> ``"reverse-holofoil"``; an empty printing -> ``"unknown"``."""
    return re.sub(r"[^a-z0-9]+", "-", sub_type_name.lower()).strip("-") or "unknown"


def card_id_for(product_id: int, printing: str) -> str:
    """The PokeWatch card id of one printing of one TCGplayer product."""
    return f"tcgplayer-{product_id}-{printing_slug(printing)}"


@dataclass(frozen=True, slots=True)
class TcgcsvPrice:
    product_id: int
    printing: str  # subTypeName as served, e.g. "Reverse Holofoil"
    group_id: int
    market_price: Decimal  # rounded to cents, always > 0


@dataclass(frozen=True, slots=True)
class TcgcsvGroup:
    group_id: int
    name: str
    abbreviation: str
    published_on: date | None


@dataclass(frozen=True, slots=True)
class TcgcsvProduct:
    product_id: int
    group_id: int
    name: str
    clean_name: str
    number: str  # extendedData "Number", "" if none (sealed products)
    rarity: str  # extendedData "Rarity", "" if none
    image_url: str
    url: str


@dataclass
class DayPrices:
    day: date
    prices: list[TcgcsvPrice]  # rows with a market price > 0, of the requested groups only
    unpriced: int  # rows skipped: marketPrice null, <= 0 or not a number
    groups: int  # price files (groups) read


class _DayError(SourceError):
    transient = False

    def __init__(self, day: date, detail: str) -> None:
        super().__init__(detail)
        self.day = day


class ArchiveMissing(_DayError):
    """tcgcsv.com has no archive for that day (HTTP 404): before 2024-02-08, or not yet made."""


class DayNotPublished(ArchiveMissing):
    """The live prices are not of that day yet (tcgcsv refreshes once a day, ~20:00 UTC)."""


class CorruptArchive(_DayError):
    """The day's archive is not a readable 7z or holds malformed JSON; its cached copy is gone."""


class TcgcsvClient:
    """Groups, products and daily prices of one TCGplayer category from tcgcsv.com."""

    name = "tcgcsv"

    def __init__(
        self,
        base_url: str,
        category: int,
        *,
        cache_dir: Path,
        timeout: float | tuple[float, float] = 30.0,
        max_retries: int = 4,
        backoff_factor: float = 1.0,
        backoff_max: float = 30.0,
        session: requests.Session | None = None,
        catalog_max_age: float = 24 * 3600.0,
    ) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.category = int(category)
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.catalog_max_age = catalog_max_age  # seconds; 0 turns the catalog cache off
        retry = Retry(
            total=max_retries,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            retry_after_max=120,
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
    def from_settings(cls) -> TcgcsvClient:
        from django.conf import settings

        return cls(
            settings.POKEWATCH_TCGCSV_URL,
            int(settings.POKEWATCH_TCGCSV_CATEGORY),
            cache_dir=Path(settings.POKEWATCH_TCGCSV_CACHE_DIR),
            timeout=float(settings.POKEWATCH_TCGCSV_TIMEOUT),
            max_retries=int(settings.POKEWATCH_TCGCSV_MAX_RETRIES),
        )

    # --- catalog ----------------------------------------------------------------------------

    def groups(self) -> list[TcgcsvGroup]:
        path = f"tcgplayer/{self.category}/groups"
        return self._catalog(path, f"groups of category {self.category}", _group)

    def products(self, group_id: int) -> list[TcgcsvProduct]:
        path = f"tcgplayer/{self.category}/{group_id}/products"
        return self._catalog(path, f"products of group {group_id}", _product)

    def _catalog(self, path: str, label: str, parse: Callable[[Any], _T]) -> list[_T]:
        """The parsed results of a catalog answer, from the cache if it is fresh enough."""
        cached = self.cache_dir / path
        if cached.is_file() and time.time() - cached.stat().st_mtime < self.catalog_max_age:
            try:
                return [parse(item) for item in _results(json.loads(cached.read_bytes()))]
            except (OSError, ValueError) as exc:
                logger.warning("%s: ignoring the cached %s: %s", _NAME, cached, exc)
        response = self._get(path, label)
        if response.status_code == 404:
            raise SourceError(
                f"{_NAME}: {label}: HTTP 404 from {response.url}; "
                "check POKEWATCH_TCGCSV_URL and POKEWATCH_TCGCSV_CATEGORY."
            )
        try:
            items = [parse(item) for item in _results(response.json())]
        except ValueError as exc:
            raise SourceError(f"{_NAME}: {label}: {exc}") from exc
        if self.catalog_max_age > 0:
            with _replaced_when_done(cached) as out:
                out.write(response.content)
        return items

    # --- prices -----------------------------------------------------------------------------

    def day_prices(
        self, day: date, group_ids: Collection[int] | None = None, *, today: date | None = None
    ) -> DayPrices:
        """Live prices for today (UTC unless ``today`` is given) or later, else the archive's.

        A recent day whose archive is not made yet comes from the live prices if they are of
        that day (collecting at 01:00 UTC, the live prices are still yesterday's).
        """
        today = today or datetime.now(UTC).date()
        if day >= today:
            return self.live_prices(day, group_ids)
        try:
            return self.archive_prices(day, group_ids)
        except ArchiveMissing:
            if day < today - timedelta(days=LIVE_FALLBACK_DAYS):
                raise
            return self.live_prices(day, group_ids)

    def refreshed_at(self) -> datetime:
        """When tcgcsv last refreshed its live prices (``/last-updated.txt``), in UTC."""
        response = self._get("last-updated.txt", "last-updated.txt")
        text = response.text.strip() if response.status_code == 200 else ""
        try:
            moment = datetime.fromisoformat(text.split()[0])
        except (ValueError, IndexError):
            raise SourceError(
                f"{_NAME}: last-updated.txt (HTTP {response.status_code}) is not a timestamp: "
                f"{text[:40]!r}; cannot tell which day the live prices are of"
            ) from None
        return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)

    def live_prices(self, day: date, group_ids: Collection[int] | None = None) -> DayPrices:
        """The live prices, one request per group (all groups unless ``group_ids``), if they
        are of ``day`` (by ``last-updated.txt``), else :class:`DayNotPublished`."""
        refreshed = self.refreshed_at()
        if refreshed.date() != day:
            raise DayNotPublished(
                day,
                f"{_NAME}: the live prices are of {refreshed.date()} (refreshed "
                f"{refreshed:%Y-%m-%d %H:%M} UTC), not of {day}: not published yet",
            )
        if group_ids is None:
            group_ids = [group.group_id for group in self.groups()]
        result = DayPrices(day, [], 0, 0)
        by_key: dict[tuple[int, str], TcgcsvPrice] = {}
        for group_id in sorted(set(group_ids)):
            label = f"prices of group {group_id}"
            response = self._get(f"tcgplayer/{self.category}/{group_id}/prices", label)
            if response.status_code == 404:
                logger.warning("%s: %s: HTTP 404, skipped", _NAME, label)
                continue
            try:
                result.unpriced += _add_prices(response.json(), group_id, by_key)
            except ValueError as exc:
                raise SourceError(f"{_NAME}: {label}: {exc}") from exc
            result.groups += 1
        result.prices = list(by_key.values())
        return result

    def archive_prices(self, day: date, group_ids: Collection[int] | None = None) -> DayPrices:
        """The day's prices from its archive: only this category's files are decompressed.

        Files are matched as ``*/{category}/{groupId}/prices``; the folder's date is not read.
        """
        path = self.archive(day)
        wanted = None if group_ids is None else sorted({int(group_id) for group_id in group_ids})
        result = DayPrices(day, [], 0, 0)
        by_key: dict[tuple[int, str], TcgcsvPrice] = {}
        for group_id, name, data in self._price_files(day, path, wanted):
            try:
                result.unpriced += _add_prices(json.loads(data), group_id, by_key)
            except ValueError as exc:
                raise self._corrupt(day, path, f"{name}: {exc}") from exc
            result.groups += 1
        if not result.groups:
            logger.warning("%s: no price file of these groups in the archive of %s", _NAME, day)
        result.prices = list(by_key.values())
        return result

    def _price_files(
        self, day: date, path: Path, wanted: list[int] | None
    ) -> Iterator[tuple[int, str, bytes]]:
        """(groupId, name, content) of the archive's price files, decompressed by a child process.

        pyppmd 1.3.1 never frees a decoder's input buffer (about the archive's size: 3.5 MB a
        day, 3.5 GB over a 1,000-day backfill), so each archive is read in a process of its own
        (``python -m prices.sources.tcgcsv_archive``) that gives it back.
        """
        if wanted == []:
            return
        command = [sys.executable, "-m", tcgcsv_archive.__name__, str(path), str(self.category)]
        command += [str(group_id) for group_id in wanted or ()]
        try:  # no shell, and the command is this module with our arguments
            child = subprocess.run(  # noqa: S603  # nosec B603
                command, capture_output=True, cwd=_ROOT, timeout=_READ_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise SourceError(f"{_NAME}: reading the archive of {day} took too long") from exc
        error = (child.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
        if child.returncode == tcgcsv_archive.UNREADABLE or child.returncode < 0:  # < 0: signal
            raise self._corrupt(day, path, error or f"the reader died ({child.returncode})")
        if child.returncode != 0:
            raise SourceError(f"{_NAME}: reading the archive of {day} failed: {error}")
        out, pos = child.stdout, 0
        while pos < len(out):
            end = out.index(b"\n", pos)
            group_id, size, name = out[pos:end].decode().split(" ", 2)
            pos = end + 1 + int(size)
            yield int(group_id), name, out[end + 1 : pos]

    def archive(self, day: date) -> Path:
        """The day's archive in the cache, downloaded first if it is not there."""
        url_path = f"archive/tcgplayer/prices-{day.isoformat()}.ppmd.7z"
        path = self.cache_dir / url_path
        if path.is_file():
            return path
        label = f"archive of {day}"
        with self._get(url_path, label, stream=True) as response:
            if response.status_code == 404:
                raise ArchiveMissing(
                    day, f"{_NAME}: no archive for {day} (HTTP 404 from {response.url})"
                )
            try:
                with _replaced_when_done(path) as out:
                    for chunk in response.iter_content(_CHUNK):
                        out.write(chunk)
            except requests.RequestException as exc:
                raise _unavailable(f"{label}: download interrupted", exc) from exc
        logger.debug("%s: archive of %s saved to %s", _NAME, day, path)
        return path

    def _corrupt(self, day: date, path: Path, what: str) -> CorruptArchive:
        path.unlink(missing_ok=True)
        logger.warning("%s: the archive of %s is corrupt (%s); deleted %s", _NAME, day, what, path)
        return CorruptArchive(
            day,
            f"{_NAME}: the archive of {day} cannot be read ({what}); the cached copy was "
            "deleted, the next run downloads it again",
        )

    def _get(self, path: str, label: str, *, stream: bool = False) -> requests.Response:
        """GET ``{base_url}/{path}``: a 200 or 404 response, else an error after retries."""
        url = f"{self.base_url}/{path}"
        try:
            response = self.session.get(url, timeout=self.timeout, stream=stream)
        except requests.RequestException as exc:
            raise _unavailable(label, exc) from exc
        status = response.status_code
        logger.debug("GET %s -> HTTP %s", url, status)  # 200+ a day on the live prices
        if status in (200, 404):
            return response
        response.close()
        if status == 429 or status >= 500:
            raise SourceUnavailable(f"{_NAME}: {label}: HTTP {status} after retries")
        raise SourceError(f"{_NAME}: {label}: unexpected HTTP {status} from {url}")


@contextmanager
def _replaced_when_done(path: Path) -> Iterator[IO[bytes]]:
    """A temp file beside ``path``, renamed to ``path`` only if the block completes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _unavailable(label: str, exc: requests.RequestException) -> SourceUnavailable:
    what = "request timed out" if _timed_out(exc) else "connection failed"
    logger.warning("%s: %s: %s (%s)", _NAME, label, what, type(exc).__name__)
    return SourceUnavailable(f"{_NAME}: {label}: {what} ({type(exc).__name__})")


def _timed_out(exc: requests.RequestException) -> bool:
    """Timeouts, including read timeouts that requests reports as ConnectionError."""
    if isinstance(exc, requests.Timeout):
        return True
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", cause)  # a MaxRetryError wraps it, a body read does not
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason,
        urllib3.exceptions.NewConnectionError,  # a ConnectTimeoutError subclass
    )


def _results(body: Any) -> list[Any]:
    """The ``results`` of a tcgcsv answer; ValueError if it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ValueError("the answer has no 'results' list")
    if body.get("success") is False:
        raise ValueError(f"the answer says it failed: {body.get('errors')!r}")
    return body["results"]


def _add_prices(body: Any, group_id: int, into: dict[tuple[int, str], TcgcsvPrice]) -> int:
    """Adds one price file's priced rows to ``into``; returns how many rows had no price."""
    unpriced = 0
    for row in _results(body):
        if not isinstance(row, dict):
            raise ValueError(f"a price row is not an object: {row!r}")
        product_id = _int(row, "productId")
        printing = row.get("subTypeName") or ""
        if not isinstance(printing, str):
            raise ValueError(f"product {product_id}: subTypeName is not a string")
        price = _market_price(row.get("marketPrice"))
        if price is None:
            unpriced += 1
            continue
        printing = sys.intern(printing)  # a handful of distinct values over ~40,000 rows
        into[(product_id, printing)] = TcgcsvPrice(product_id, printing, group_id, price)
    return unpriced


def _market_price(value: Any) -> Decimal | None:
    """A positive price in cents, or None (null, zero, negative, not a finite number)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    price = Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)
    return price if price > 0 else None


def _group(item: Any) -> TcgcsvGroup:
    if not isinstance(item, dict):
        raise ValueError(f"a group is not an object: {item!r}")
    name, abbreviation = _text(item, "name"), _text(item, "abbreviation")
    return TcgcsvGroup(_int(item, "groupId"), name, abbreviation, _day(item.get("publishedOn")))


def _product(item: Any) -> TcgcsvProduct:
    if not isinstance(item, dict):
        raise ValueError(f"a product is not an object: {item!r}")
    extended = item.get("extendedData")
    extended = extended if isinstance(extended, list) else []  # sealed products: [] or null
    data = {e.get("name"): e.get("value") for e in extended if isinstance(e, dict)}
    return TcgcsvProduct(
        product_id=_int(item, "productId"),
        group_id=_int(item, "groupId"),
        name=_text(item, "name"),
        clean_name=_text(item, "cleanName"),
        number=_text(data, "Number"),
        rarity=_text(data, "Rarity"),
        image_url=_text(item, "imageUrl"),
        url=_text(item, "url"),
    )


def _day(value: Any) -> date | None:
    """``"2023-09-22T00:00:00"`` -> that date; None if it cannot be read."""
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _int(item: dict[str, Any], key: str) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return value


def _text(item: dict[Any, Any], key: str) -> str:
    value = item.get(key)
    return "" if value is None else str(value).strip()
