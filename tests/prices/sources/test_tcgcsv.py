"""The tcgcsv.com client against a local copy of the site (no network, no database).

The archives are two real days of tcgcsv.com (tests/fixtures/tcgcsv/README.md); the catalog
files are small documents in the site's shapes for three real groups. The fixtures
(tcgcsv_server, tcgcsv_client, make_tcgcsv_client) are in tests/prices/conftest.py; the local
site itself is tests/support/tcgcsv.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pokewatch_site.errors import SourceError, SourceUnavailable
from prices.sources.tcgcsv import (
    LIVE_FALLBACK_DAYS,
    ArchiveMissing,
    CorruptArchive,
    DayNotPublished,
    DayPrices,
    TcgcsvClient,
    TcgcsvGroup,
    TcgcsvPrice,
    card_id_for,
    printing_slug,
)
from tests.support.tcgcsv import (
    DAY1,
    DAY1_CATEGORY_GROUPS,
    DAY1_CATEGORY_PRICED,
    DAY1_CATEGORY_UNPRICED,
    DAY1_PRICED,
    DAY1_UNPRICED,
    DAY2,
    DAY2_CATEGORY_PRICED,
    DAY2_PRICED,
    DAY2_UNPRICED,
    FIXTURE_GROUPS,
    FIXTURES,
    GROUP_151,
    GROUP_PRE,
    GROUP_TEF,
    TcgcsvServer,
    archive_path,
)

MakeClient = Callable[..., TcgcsvClient]
ARCHIVE1 = archive_path(DAY1)


def price_file(*rows: dict) -> str:
    return json.dumps({"success": True, "errors": [], "results": list(rows)})


def row(product_id: object, market: object, printing: object = "Normal") -> dict:
    return {
        "productId": product_id,
        "lowPrice": 1.0,
        "marketPrice": market,
        "subTypeName": printing,
    }


def by_key(prices: list[TcgcsvPrice]) -> dict[tuple[int, str], TcgcsvPrice]:
    return {(p.product_id, p.printing): p for p in prices}


def cached_archives(client: TcgcsvClient) -> list[str]:
    folder = client.cache_dir / "archive" / "tcgplayer"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("printing", "slug"),
    [
        ("Holofoil", "holofoil"),
        ("Reverse Holofoil", "reverse-holofoil"),
        ("1st Edition Holofoil", "1st-edition-holofoil"),
        ("Normal", "normal"),
        ("Unlimited", "unlimited"),
        ("  Foil / Etched!! ", "foil-etched"),
        ("", "unknown"),
        (" -- ", "unknown"),
    ],
)
def test_printing_slug(printing: str, slug: str) -> None:
    assert printing_slug(printing) == slug


def test_card_id_for_names_one_printing_of_one_product() -> None:
    assert card_id_for(517045, "Holofoil") == "tcgplayer-517045-holofoil"
    assert card_id_for(42, "Reverse Holofoil") == "tcgplayer-42-reverse-holofoil"
    assert card_id_for(42, "") == "tcgplayer-42-unknown"


# --- archives: real days -------------------------------------------------------------------


@pytest.fixture(scope="module")
def day1_whole_category(tmp_path_factory: pytest.TempPathFactory) -> DayPrices:
    """DAY1 parsed once, from a cache that already holds its archive (so no server)."""
    cache = tmp_path_factory.mktemp("tcgcsv-day1")
    (cache / "archive" / "tcgplayer").mkdir(parents=True)
    shutil.copy(FIXTURES / ARCHIVE1.lstrip("/"), cache / ARCHIVE1.lstrip("/"))
    return TcgcsvClient("http://127.0.0.1:9", 3, cache_dir=cache).archive_prices(DAY1)


def test_a_real_archive_day_holds_the_whole_category(day1_whole_category: DayPrices) -> None:
    result = day1_whole_category

    assert result.day == DAY1
    assert len(result.prices) == DAY1_CATEGORY_PRICED
    assert result.unpriced == DAY1_CATEGORY_UNPRICED
    assert result.groups == DAY1_CATEGORY_GROUPS
    assert len(by_key(result.prices)) == len(result.prices)
    assert all(p.market_price > 0 for p in result.prices)
    assert all(p.market_price == p.market_price.quantize(Decimal("0.01")) for p in result.prices)
    assert len({p.group_id for p in result.prices}) == 204  # 4 groups have no price that day
    assert by_key(result.prices)[(517045, "Holofoil")] == TcgcsvPrice(
        517045, "Holofoil", GROUP_151, Decimal("301.91")
    )


def test_an_archive_day_restricted_to_some_groups(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    result = tcgcsv_client.archive_prices(DAY1, FIXTURE_GROUPS)

    assert (result.day, result.groups) == (DAY1, 3)
    assert len(result.prices) == sum(DAY1_PRICED.values())
    assert result.unpriced == sum(DAY1_UNPRICED.values())
    for group_id, priced in DAY1_PRICED.items():
        assert sum(p.group_id == group_id for p in result.prices) == priced
    prices = {key: p.market_price for key, p in by_key(result.prices).items()}
    assert prices[(517045, "Holofoil")] == Decimal("301.91")
    assert prices[(536225, "Normal")] == Decimal("250.17")
    assert prices[(542929, "Holofoil")] == Decimal("68.86")
    assert prices[(610516, "Holofoil")] == Decimal("999.76")
    assert prices[(593355, "Normal")] == Decimal("122.66")
    assert tcgcsv_server.requests == [ARCHIVE1]


def test_archive_is_downloaded_once_then_read_from_the_cache(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    first = tcgcsv_client.archive(DAY1)
    second = tcgcsv_client.archive(DAY1)

    assert first == second == tcgcsv_client.cache_dir / ARCHIVE1.lstrip("/")
    assert first.read_bytes() == (FIXTURES / ARCHIVE1.lstrip("/")).read_bytes()
    assert tcgcsv_server.requests == [ARCHIVE1]
    assert cached_archives(tcgcsv_client) == ["prices-2025-09-21.ppmd.7z"]


def test_if_the_download_is_interrupted_then_no_file_is_left_under_the_final_name(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    tcgcsv_server.interrupt(DAY1)

    with pytest.raises(SourceUnavailable, match="2025-09-21: download interrupted") as info:
        tcgcsv_client.archive(DAY1)

    assert info.value.transient is True
    assert cached_archives(tcgcsv_client) == []  # no half archive, no temp file either
    path = tcgcsv_client.archive(DAY1)  # the next run downloads it whole
    assert path.read_bytes() == (FIXTURES / ARCHIVE1.lstrip("/")).read_bytes()


@pytest.mark.parametrize("day", [DAY1, date(2024, 2, 7)])
def test_if_the_site_has_no_archive_for_the_day_then_archive_missing(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, day: date
) -> None:
    tcgcsv_server.missing(DAY1)  # DAY1 has a fixture; 2024-02-07 has none

    with pytest.raises(ArchiveMissing, match=f"no archive for {day}") as info:
        tcgcsv_client.archive_prices(day)

    assert info.value.day == day
    assert info.value.transient is False
    assert cached_archives(tcgcsv_client) == []


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_if_the_archive_is_corrupt_then_corrupt_archive_and_the_cached_copy_is_deleted(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, how: str
) -> None:
    tcgcsv_server.corrupt(DAY1, how)

    for attempt in (1, 2):  # nothing is kept, so each run downloads it again
        with pytest.raises(CorruptArchive, match="2025-09-21 cannot be read") as info:
            tcgcsv_client.archive_prices(DAY1)
        assert info.value.day == DAY1
        assert cached_archives(tcgcsv_client) == []
        assert len(tcgcsv_server.archive_requests(DAY1)) == attempt


# --- archives: small built ones ------------------------------------------------------------


def test_archive_files_are_matched_by_category_and_group_never_by_the_folder_date(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    day = date(2025, 10, 1)
    tcgcsv_server.add_archive(
        day,
        {
            "2020-01-01/3/11/prices": price_file(row(1, 2.5), row(1, 3.0, "Reverse Holofoil")),
            "2020-01-01/3/12/prices": price_file(row(2, 4.0), row(3, None)),
            "2020-01-01/85/13/prices": price_file(row(4, 9.0)),  # another category
            "2020-01-01/3/11/products": '{"not": "a price file"}',
        },
    )

    everything = tcgcsv_client.archive_prices(day)
    one_group = tcgcsv_client.archive_prices(day, [12, 99])
    no_group = tcgcsv_client.archive_prices(day, [])

    assert (everything.day, everything.groups, everything.unpriced) == (day, 2, 1)
    assert sorted((p.product_id, p.printing, p.group_id) for p in everything.prices) == [
        (1, "Normal", 11),
        (1, "Reverse Holofoil", 11),
        (2, "Normal", 12),
    ]
    assert (one_group.groups, one_group.unpriced) == (1, 1)
    assert [(p.product_id, p.market_price) for p in one_group.prices] == [(2, Decimal("4.00"))]
    assert (no_group.prices, no_group.groups) == ([], 0)


def test_market_prices_are_rounded_to_cents_and_rows_without_one_are_counted(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    rows = [row(1, 1.005), row(2, 7), row(3, 0.004), row(4, None), row(5, 0), row(6, -2.5)]
    rows += [row(7, "12.00"), row(8, True), row(9, 5.0), row(9, 6.0), row(10, 1.5, None)]
    text = price_file(*rows, row(11, "nan")).replace('"nan"', "NaN")  # Python's json reads NaN
    tcgcsv_server.add_archive(DAY1, {"x/3/1/prices": text + " ", "x/3/2/prices": price_file()})

    result = tcgcsv_client.archive_prices(DAY1)

    assert [(p.product_id, p.printing, p.market_price) for p in result.prices] == [
        (1, "Normal", Decimal("1.01")),
        (2, "Normal", Decimal("7.00")),
        (9, "Normal", Decimal("6.00")),  # the same product and printing twice: the last wins
        (10, "", Decimal("1.50")),
    ]
    assert result.unpriced == 7  # 0.004 (rounds to 0), null, 0, -2.5, "12.00", true, NaN
    assert result.groups == 2


@pytest.mark.parametrize(
    "content",
    [
        '{"success": true, "errors": [], "results": [',
        price_file({"marketPrice": 1.0, "subTypeName": "Normal"}),
        price_file(row("517045", 1.0)),
        price_file(row(1.5, 1.0)),
        price_file(row(1, 1.0, 7)),
        price_file("not an object"),
        '{"success": true, "errors": [], "results": {}}',
        '{"success": false, "errors": ["boom"], "results": []}',
        b"\xff\xfe not utf-8",
    ],
)
def test_if_a_price_file_is_malformed_then_corrupt_archive(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, content: str | bytes
) -> None:
    good = price_file(row(1, 1.0))
    tcgcsv_server.add_archive(DAY1, {"d/3/1/prices": good, "d/3/2/prices": content})

    with pytest.raises(CorruptArchive, match="d/3/2/prices") as info:
        tcgcsv_client.archive_prices(DAY1)

    assert info.value.day == DAY1
    assert cached_archives(tcgcsv_client) == []


def test_if_the_archive_has_no_file_of_the_groups_then_the_day_is_empty(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, caplog: pytest.LogCaptureFixture
) -> None:
    tcgcsv_server.add_archive(DAY1, {"d/85/1/prices": price_file(row(1, 1.0))})

    result = tcgcsv_client.archive_prices(DAY1)

    assert (result.prices, result.unpriced, result.groups) == ([], 0, 0)
    assert "no price file of these groups" in caplog.text


@pytest.mark.parametrize(
    ("script", "error", "message"),
    [
        ("kill -SEGV $$", CorruptArchive, r"cannot be read \(the reader died \(-11\)\)"),
        (
            "echo 'Traceback' >&2; echo 'MemoryError' >&2; exit 1",
            SourceError,
            "failed: MemoryError",
        ),
    ],
)
def test_if_the_archive_reader_dies_then_the_day_fails(
    tcgcsv_server: TcgcsvServer,
    tcgcsv_client: TcgcsvClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    error: type[SourceError],
    message: str,
) -> None:
    tcgcsv_client.archive(DAY1)
    reader = tmp_path / "python"
    reader.write_text(f"#!/bin/sh\n{script}\n")
    reader.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(reader))  # the child process the client starts

    with pytest.raises(error, match=message) as info:
        tcgcsv_client.archive_prices(DAY1)

    assert isinstance(info.value, CorruptArchive) == (error is CorruptArchive)
    assert cached_archives(tcgcsv_client) == (
        [] if error is CorruptArchive else ["prices-2025-09-21.ppmd.7z"]
    )


# --- HTTP failures -------------------------------------------------------------------------


def test_retries_503_then_succeeds(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    tcgcsv_server.fail(ARCHIVE1, 503, times=2)

    tcgcsv_client.archive(DAY1)

    assert tcgcsv_server.requests == [ARCHIVE1] * 3
    assert cached_archives(tcgcsv_client) == ["prices-2025-09-21.ppmd.7z"]


CALLS: dict[str, Callable[[TcgcsvClient], object]] = {
    ARCHIVE1: lambda client: client.archive_prices(DAY1),
    "/tcgplayer/3/groups": lambda client: client.groups(),
    "/tcgplayer/3/23237/prices": lambda client: client.live_prices(DAY2, [GROUP_151]),
}


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
@pytest.mark.parametrize("path", list(CALLS))
def test_if_429_or_5xx_every_time_then_source_unavailable(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, path: str, status: int
) -> None:
    tcgcsv_server.fail(path, status, times=100)

    with pytest.raises(SourceUnavailable, match=f"HTTP {status} after retries") as info:
        CALLS[path](tcgcsv_client)

    assert info.value.transient is True
    tries = [p for p in tcgcsv_server.requests if p != "/last-updated.txt"]
    assert tries == [path] * 3  # max_retries=2: three tries
    assert cached_archives(tcgcsv_client) == []


def test_if_reading_times_out_then_source_unavailable(
    tcgcsv_server: TcgcsvServer, make_tcgcsv_client: MakeClient
) -> None:
    for retries in (0, 1):  # requests reports a read timeout differently after a retry
        tcgcsv_server.delay(ARCHIVE1, 0.4, times=retries + 1)
        client = make_tcgcsv_client(timeout=(2.0, 0.1), max_retries=retries)
        with pytest.raises(SourceUnavailable, match="timed out"):
            client.archive(DAY1)
        assert cached_archives(client) == []
    # The server answers one request at a time: let it see them all before the next test.
    tcgcsv_server.wait_for_requests(1 + 2)


def test_if_the_connection_is_refused_then_source_unavailable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request
    client = TcgcsvClient(
        f"http://127.0.0.1:{port}", 3, cache_dir=tmp_path, max_retries=1, backoff_factor=0
    )

    with pytest.raises(SourceUnavailable, match="connection failed"):
        client.archive(DAY1)


@pytest.mark.parametrize("status", [400, 401, 403, 410])
def test_if_the_site_answers_another_error_then_source_error(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, status: int
) -> None:
    tcgcsv_server.fail(ARCHIVE1, status)

    with pytest.raises(SourceError, match=f"unexpected HTTP {status}") as info:
        tcgcsv_client.archive(DAY1)

    assert info.value.transient is False
    assert tcgcsv_server.requests == [ARCHIVE1]


# --- catalog -------------------------------------------------------------------------------


def test_groups_are_parsed(tcgcsv_client: TcgcsvClient) -> None:
    assert tcgcsv_client.groups() == [
        TcgcsvGroup(GROUP_151, "SV: Scarlet & Violet 151", "MEW", date(2023, 9, 22)),
        TcgcsvGroup(GROUP_TEF, "SV05: Temporal Forces", "TEF", date(2024, 3, 22)),
        TcgcsvGroup(GROUP_PRE, "SV: Prismatic Evolutions", "PRE", date(2025, 1, 17)),
    ]


def test_group_dates_that_cannot_be_read_are_none(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    groups = [{"groupId": 1, "name": "A", "abbreviation": None, "publishedOn": "soon"}]
    groups.append({"groupId": 2, "name": "B", "abbreviation": "B", "publishedOn": None})
    tcgcsv_server.serve("/tcgplayer/3/groups", json.dumps({"success": True, "results": groups}))

    assert tcgcsv_client.groups() == [TcgcsvGroup(1, "A", "", None), TcgcsvGroup(2, "B", "B", None)]


def test_products_are_parsed_with_number_and_rarity(tcgcsv_client: TcgcsvClient) -> None:
    products = {p.product_id: p for group in FIXTURE_GROUPS for p in tcgcsv_client.products(group)}

    charizard = products[517045]
    assert (charizard.group_id, charizard.name, charizard.clean_name) == (
        GROUP_151,
        "Charizard ex - 199/165",
        "Charizard ex 199 165",
    )
    assert (charizard.number, charizard.rarity) == ("199/165", "Special Illustration Rare")
    assert charizard.image_url == "https://tcgplayer-cdn.tcgplayer.com/product/517045_200w.jpg"
    assert charizard.url == "https://www.tcgplayer.com/product/517045"
    assert (products[542929].number, products[610516].number) == ("208/162", "161/131")
    for sealed in (536225, 593355):  # no extendedData at all / a UPC only
        assert (products[sealed].number, products[sealed].rarity) == ("", "")
    assert products[593355].name == "Prismatic Evolutions Elite Trainer Box"
    # Every product with a price row in these groups on DAY1: 244 + 253 + 394.
    assert len(products) == 891


def test_catalog_answers_are_cached_for_a_day(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    first = (tcgcsv_client.groups(), tcgcsv_client.products(GROUP_151))
    second = (tcgcsv_client.groups(), tcgcsv_client.products(GROUP_151))

    assert first == second
    assert tcgcsv_server.requests == ["/tcgplayer/3/groups", "/tcgplayer/3/23237/products"]
    cached = tcgcsv_client.cache_dir / "tcgplayer" / "3" / "groups"
    old = time.time() - 25 * 3600
    os.utime(cached, (old, old))
    assert tcgcsv_client.groups() == first[0]
    assert tcgcsv_server.requests[-1] == "/tcgplayer/3/groups"
    assert len(tcgcsv_server.requests) == 3


def test_if_the_catalog_cache_is_off_or_unreadable_then_the_site_is_asked(
    tcgcsv_server: TcgcsvServer, make_tcgcsv_client: MakeClient
) -> None:
    uncached = make_tcgcsv_client(catalog_max_age=0)
    uncached.groups()
    uncached.groups()
    assert len(tcgcsv_server.requests) == 2
    assert not (uncached.cache_dir / "tcgplayer").exists()

    client = make_tcgcsv_client()
    cached = client.cache_dir / "tcgplayer" / "3" / "groups"
    cached.parent.mkdir(parents=True)
    cached.write_text("{not json")
    assert len(client.groups()) == 3
    assert len(tcgcsv_server.requests) == 3
    assert len(json.loads(cached.read_text())["results"]) == 3


def test_if_the_group_is_unknown_then_products_raise_source_error(
    tcgcsv_client: TcgcsvClient,
) -> None:
    with pytest.raises(SourceError, match="products of group 999: HTTP 404") as info:
        tcgcsv_client.products(999)

    assert info.value.transient is False


@pytest.mark.parametrize(
    "body",
    [
        "[1, 2]",
        "<html>",
        '{"success": false, "errors": ["boom"], "results": []}',
        '{"success": true, "results": [{"groupId": "23237", "name": "151"}]}',
        '{"success": true, "results": ["a group"]}',
    ],
)
def test_if_a_catalog_answer_is_malformed_then_source_error(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, body: str
) -> None:
    tcgcsv_server.serve("/tcgplayer/3/groups", body)

    with pytest.raises(SourceError, match="groups of category 3"):
        tcgcsv_client.groups()

    assert not (tcgcsv_client.cache_dir / "tcgplayer" / "3" / "groups").exists()


# --- live prices and day_prices ------------------------------------------------------------


def test_live_prices_read_every_group_of_the_catalog(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    result = tcgcsv_client.live_prices(DAY2)

    assert (result.day, result.groups) == (DAY2, 3)
    assert len(result.prices) == sum(DAY2_PRICED.values())
    assert result.unpriced == sum(DAY2_UNPRICED.values())
    assert by_key(result.prices)[(610516, "Holofoil")] == TcgcsvPrice(
        610516, "Holofoil", GROUP_PRE, Decimal("1001.45")
    )
    assert tcgcsv_server.requests == [
        "/last-updated.txt",
        "/tcgplayer/3/groups",
        "/tcgplayer/3/23237/prices",
        "/tcgplayer/3/23381/prices",
        "/tcgplayer/3/23821/prices",
    ]


def test_if_a_group_has_no_live_prices_then_it_is_skipped(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="prices.sources.tcgcsv"):
        result = tcgcsv_client.live_prices(DAY2, [GROUP_TEF, 999])

    assert (result.groups, result.unpriced) == (1, DAY2_UNPRICED[GROUP_TEF])
    assert len(result.prices) == DAY2_PRICED[GROUP_TEF]
    assert "prices of group 999: HTTP 404, skipped" in caplog.text
    assert "/tcgplayer/3/groups" not in tcgcsv_server.requests


@pytest.mark.parametrize("body", ["<html>", price_file(row("x", 1.0)), '{"results": 3}'])
def test_if_live_prices_are_malformed_then_source_error(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, body: str
) -> None:
    tcgcsv_server.serve("/tcgplayer/3/23237/prices", body)

    with pytest.raises(SourceError, match="prices of group 23237") as info:
        tcgcsv_client.live_prices(DAY2, [GROUP_151])

    assert not isinstance(info.value, CorruptArchive)


def test_day_prices_reads_live_from_today_on_and_the_archive_before(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    past = date(2025, 9, 1)
    tcgcsv_server.add_archive(past, {"2025-09-01/3/23237/prices": price_file(row(517045, 250))})

    today = tcgcsv_client.day_prices(DAY2, [GROUP_151], today=DAY2)
    yesterday = tcgcsv_client.day_prices(past, [GROUP_151], today=DAY2)
    tcgcsv_server.live_day = datetime.now(UTC).date()
    utc_today = tcgcsv_client.day_prices(tcgcsv_server.live_day, [GROUP_151])

    assert len(today.prices) == len(utc_today.prices) == DAY2_PRICED[GROUP_151]
    assert [(p.product_id, p.market_price) for p in yesterday.prices] == [
        (517045, Decimal("250.00"))
    ]
    assert tcgcsv_server.requests.count("/tcgplayer/3/23237/prices") == 2
    assert tcgcsv_server.archive_requests() == [archive_path(past)]


def test_live_prices_of_another_day_are_not_published_yet(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    with pytest.raises(DayNotPublished, match="live prices are of 2025-09-22 .* not of 2025-09-23"):
        tcgcsv_client.day_prices(DAY2 + timedelta(days=1), [GROUP_151], today=DAY2)

    assert "/tcgplayer/3/23237/prices" not in tcgcsv_server.requests


def test_a_recent_day_without_its_archive_yet_comes_from_the_live_prices(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    tcgcsv_server.missing(DAY2)
    live = tcgcsv_client.day_prices(DAY2, [GROUP_151], today=DAY2 + timedelta(days=1))
    assert len(live.prices) == DAY2_PRICED[GROUP_151]

    older = DAY2 - timedelta(days=LIVE_FALLBACK_DAYS + 1)
    with pytest.raises(ArchiveMissing) as info:
        tcgcsv_client.day_prices(older, [GROUP_151], today=DAY2)
    assert not isinstance(info.value, DayNotPublished)


@pytest.mark.parametrize("body,status", [("soon", 200), ("", 200), ("not found", 404)])
def test_if_last_updated_is_not_a_timestamp_then_the_live_prices_are_refused(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient, body: str, status: int
) -> None:
    tcgcsv_server.serve("/last-updated.txt", body, status)
    with pytest.raises(SourceError, match="cannot tell which day the live prices are of"):
        tcgcsv_client.live_prices(DAY2, [GROUP_151])


def test_from_settings(settings, tmp_path: Path) -> None:
    settings.POKEWATCH_TCGCSV_URL = "http://mirror.example/"
    settings.POKEWATCH_TCGCSV_CATEGORY = 85
    settings.POKEWATCH_TCGCSV_TIMEOUT = 7.5
    settings.POKEWATCH_TCGCSV_MAX_RETRIES = 2
    settings.POKEWATCH_TCGCSV_CACHE_DIR = tmp_path / "tcgcsv"

    client = TcgcsvClient.from_settings()

    assert (client.base_url, client.category, client.cache_dir) == (
        "http://mirror.example",
        85,
        tmp_path / "tcgcsv",
    )
    assert client.timeout == (7.5, 7.5)
    assert client.session.get_adapter("https://tcgcsv.com").max_retries.total == 2


# --- memory --------------------------------------------------------------------------------


def test_memory_stays_flat_over_many_days(
    tcgcsv_server: TcgcsvServer, tcgcsv_client: TcgcsvClient
) -> None:
    """Only this category's files are held, never the archive; each day is let go.

    Measured with tracemalloc (this process; the decompression runs in a child process, see
    TcgcsvClient._price_files): one whole day of category 3 peaks at ~18.5 MB (6.5 MB of JSON
    and the ~41,600 parsed rows); five days in a row peak at the same ~18.5 MB.
    """
    days = [DAY1, DAY2] + [DAY2 + timedelta(days=n) for n in (1, 2, 3)]
    for n, day in enumerate(days[2:]):  # copies keep their folders' original date
        tcgcsv_server.add_archive_copy(day, DAY1 if n % 2 else DAY2)
    for day in days:
        tcgcsv_client.archive(day)  # downloads are streamed; the test server shares this process

    counts = []
    tracemalloc.start()
    try:
        counts.append(len(tcgcsv_client.archive_prices(days[0]).prices))
        one_day = tracemalloc.get_traced_memory()[1]
        for day in days[1:]:
            counts.append(len(tcgcsv_client.archive_prices(day).prices))
        five_days = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert counts[0] == counts[3] == DAY1_CATEGORY_PRICED
    assert counts[1] == counts[2] == counts[4] == DAY2_CATEGORY_PRICED
    assert one_day < 64 * 1024 * 1024, f"one day peaked at {one_day / 1e6:.1f} MB"
    assert five_days <= 1.3 * one_day, f"{five_days / 1e6:.1f} MB vs {one_day / 1e6:.1f} MB"
