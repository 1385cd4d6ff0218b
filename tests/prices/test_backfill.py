"""Collecting tcgcsv day by day into the database: imports, resumes, missing and bad days."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from pokewatch_site.errors import SourceUnavailable
from prices.backfill import collect_days
from prices.models import Card, CollectionRun, IngestedDay, PricePoint
from tests.support.tcgcsv import (
    DAY1,
    DAY1_PRICED,
    DAY2,
    DAY2_PRICED,
    FIXTURE_GROUPS,
    GROUP_TEF,
    TcgcsvServer,
    archive_path,
)

GROUPS = list(FIXTURE_GROUPS)


def collect(client, end: date, days: int = 1, **options):
    return collect_days(end, days, client=client, group_ids=GROUPS, **options)


@pytest.fixture
def week(tcgcsv_server: TcgcsvServer) -> list[date]:
    """Seven days served from the two real archives (alternating)."""
    days = [DAY1 + timedelta(days=i) for i in range(7)]
    for i, day in enumerate(days[2:]):
        tcgcsv_server.add_archive_copy(day, DAY1 if i % 2 == 0 else DAY2)
    return days


def test_a_day_is_imported_with_every_priced_row_and_its_cards(db, tcgcsv_client) -> None:
    result = collect(tcgcsv_client, DAY1)

    priced = sum(DAY1_PRICED.values())
    assert [d.status for d in result.days] == ["ingested"]
    assert PricePoint.objects.filter(date=DAY1, source="tcgcsv").count() == priced
    assert Card.objects.count() == priced  # one card per (product, printing)
    day = IngestedDay.objects.get(source="tcgcsv", date=DAY1)
    assert (day.rows, day.cards_created) == (priced, priced)
    run = CollectionRun.objects.get()
    assert (run.status, run.days_ingested, run.rows) == ("succeeded", 1, priced)

    zard = Card.objects.get(card_id="tcgplayer-517045-holofoil")
    assert (zard.name, zard.tcgplayer_id, zard.printing) == (
        "Charizard ex - 199/165",
        517045,
        "Holofoil",
    )
    assert zard.number and zard.rarity and zard.set_name and zard.category == "other"
    assert zard.image_url.endswith("517045_200w.jpg")
    assert zard.url == "https://www.tcgplayer.com/product/517045"
    assert zard.latest_price_date == DAY1
    box = Card.objects.get(card_id="tcgplayer-536225-normal")
    assert box.category == "sealed" and box.printing == "Normal"
    # A product printed several ways is several cards.
    assert Card.objects.values("tcgplayer_id").distinct().count() < priced


def test_importing_a_day_again_changes_nothing(db, tcgcsv_client) -> None:
    collect(tcgcsv_client, DAY1)
    before = list(PricePoint.objects.order_by("pk").values_list("pk", "market_price"))

    again = collect(tcgcsv_client, DAY1)
    forced = collect(tcgcsv_client, DAY1, force=True)

    assert [d.status for d in again.days] == ["skipped"]
    assert [d.status for d in forced.days] == ["ingested"]
    assert forced.days[0].detail.endswith(f"{sum(DAY1_PRICED.values()):,} unchanged")
    assert list(PricePoint.objects.order_by("pk").values_list("pk", "market_price")) == before
    assert Card.objects.count() == sum(DAY1_PRICED.values())


def test_an_interrupted_backfill_resumes_where_it_stopped(db, tcgcsv_client, week) -> None:
    seen: list[date] = []

    def interrupt_after_three(outcome) -> None:
        seen.append(outcome.day)
        if len(seen) == 3:
            raise KeyboardInterrupt  # Ctrl-C after the third day was committed

    with pytest.raises(KeyboardInterrupt):
        collect(tcgcsv_client, week[-1], days=7, on_day=interrupt_after_three)
    assert sorted(IngestedDay.objects.values_list("date", flat=True)) == week[:3]
    assert CollectionRun.objects.get().status == "failed"

    resumed = collect(tcgcsv_client, week[-1], days=7)

    assert [d.status for d in resumed.days] == ["skipped"] * 3 + ["ingested"] * 4
    assert sorted(IngestedDay.objects.values_list("date", flat=True)) == week
    assert PricePoint.objects.values("date").distinct().count() == 7


def test_days_written_before_the_source_went_down_are_still_scored(
    db, tcgcsv_server, tcgcsv_client, monkeypatch
) -> None:
    scored: list[date] = []
    monkeypatch.setattr("prices.backfill.score_from", lambda day: scored.append(day) or 0)
    tcgcsv_server.fail(archive_path(DAY2), 503, times=100)

    with pytest.raises(SourceUnavailable):
        collect(tcgcsv_client, DAY2, days=2)

    assert list(IngestedDay.objects.values_list("date", flat=True)) == [DAY1]
    assert scored == [DAY1]  # served now, not only once a later run gets through


def test_a_day_without_an_archive_is_reported_and_skipped(db, tcgcsv_server, tcgcsv_client) -> None:
    tcgcsv_server.missing(DAY2)
    result = collect(tcgcsv_client, DAY2, days=2)

    assert [d.status for d in result.days] == ["ingested", "missing"]
    assert "2025-09-22" in result.days[1].detail
    assert not PricePoint.objects.filter(date=DAY2).exists()
    run = CollectionRun.objects.get()
    assert (run.status, run.days_missing) == ("partial", 1)
    assert "2025-09-22" in run.error


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_corrupt_archive_fails_its_day_and_writes_nothing_of_it(
    db, tcgcsv_server, tcgcsv_client, how: str
) -> None:
    tcgcsv_server.corrupt(DAY1, how)
    result = collect(tcgcsv_client, DAY2, days=2)

    assert [d.status for d in result.days] == ["failed", "ingested"]
    assert "2025-09-21" in result.days[0].detail
    assert not PricePoint.objects.filter(date=DAY1).exists()
    assert not IngestedDay.objects.filter(date=DAY1).exists()
    assert PricePoint.objects.filter(date=DAY2).count() == sum(DAY2_PRICED.values())
    assert CollectionRun.objects.get().days_failed == 1


def test_today_comes_from_the_live_prices(db, tcgcsv_server, tcgcsv_client) -> None:
    today = timezone.now().date()
    tcgcsv_server.live_day = today
    result = collect(tcgcsv_client, today)
    assert [d.status for d in result.days] == ["ingested"]
    assert PricePoint.objects.filter(date=today).count() == sum(DAY2_PRICED.values())


def test_before_the_evening_refresh_yesterdays_live_prices_are_never_dated_today(
    db, tcgcsv_server, tcgcsv_client
) -> None:
    today = timezone.now().date()
    yesterday, before = today - timedelta(days=1), today - timedelta(days=2)
    tcgcsv_server.live_day = yesterday  # the nightly collection, at 01:00 UTC
    tcgcsv_server.add_archive_copy(before, DAY1)  # yesterday's archive is not made yet

    night = collect(tcgcsv_client, today, days=3)

    assert [d.status for d in night.days] == ["ingested", "ingested", "missing"]
    assert "live prices are of " + yesterday.isoformat() in night.days[2].detail
    assert PricePoint.objects.filter(date=before).count() == sum(DAY1_PRICED.values())
    assert PricePoint.objects.filter(date=yesterday).count() == sum(DAY2_PRICED.values())
    assert not PricePoint.objects.filter(date=today).exists()
    assert set(IngestedDay.objects.values_list("date", flat=True)) == {before, yesterday}

    tcgcsv_server.live_day = today  # after the refresh, today is collected
    evening = collect(tcgcsv_client, today, days=3)
    assert [d.status for d in evening.days] == ["skipped", "skipped", "ingested"]
    assert PricePoint.objects.filter(date=today).count() == sum(DAY2_PRICED.values())


def test_a_minimum_price_limits_new_cards_but_never_cuts_a_tracked_series(
    db, tcgcsv_client
) -> None:
    first = collect(tcgcsv_client, DAY1, min_price=Decimal("50"))
    tracked = set(Card.objects.values_list("card_id", flat=True))
    assert 0 < len(tracked) < sum(DAY1_PRICED.values())
    assert PricePoint.objects.filter(date=DAY1, market_price__lt=50).count() == 0
    assert first.days[0].cards_created == len(tracked)

    collect(tcgcsv_client, DAY2, min_price=Decimal("100000"))  # nothing new is that dear

    assert set(Card.objects.values_list("card_id", flat=True)) == tracked
    day2 = set(PricePoint.objects.filter(date=DAY2).values_list("card__card_id", flat=True))
    assert day2 and day2 <= tracked  # the tracked cards kept their DAY2 prices, cheap or not


def test_only_the_chosen_groups_are_tracked(db, tcgcsv_client) -> None:
    collect_days(DAY1, 1, client=tcgcsv_client, group_ids=[GROUP_TEF])
    assert PricePoint.objects.count() == DAY1_PRICED[GROUP_TEF]


def test_without_network_the_collection_fails_clearly_and_changes_nothing(
    db, settings, tmp_path
) -> None:
    from pipelines.tasks import collect_prices_task

    settings.POKEWATCH_TCGCSV_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.POKEWATCH_TCGCSV_MAX_RETRIES = 0
    settings.POKEWATCH_TCGCSV_TIMEOUT = 1.0
    settings.POKEWATCH_TCGCSV_CACHE_DIR = tmp_path
    with pytest.raises(SourceUnavailable):
        collect_prices_task.run("tcgcsv", days=2)  # the task body; Celery retries it later
    run = CollectionRun.objects.get()
    assert run.status == "failed" and run.trigger == "schedule"
    assert "tcgcsv" in run.error.lower() or "connect" in run.error.lower()
    assert not PricePoint.objects.exists() and not IngestedDay.objects.exists()


def test_collect_prices_command_prints_a_line_per_day_and_the_summary(
    db, settings, tcgcsv_server, tmp_path
) -> None:
    settings.POKEWATCH_TCGCSV_URL = tcgcsv_server.url
    settings.POKEWATCH_TCGCSV_CACHE_DIR = tmp_path
    settings.POKEWATCH_TCGCSV_GROUPS = GROUPS
    tcgcsv_server.missing(DAY1 - timedelta(days=1))
    out = StringIO()
    call_command(
        "collect_prices", "--source", "tcgcsv", "--date", str(DAY2), "--days", "3", stdout=out
    )
    text = out.getvalue()
    assert "2025-09-20: missing" in text
    assert f"2025-09-21: {sum(DAY1_PRICED.values()):,} prices" in text
    assert "prices/s" in text
    assert "2 day(s) ingested" in text and "1 without an archive" in text


def test_collect_prices_command_fails_when_a_day_failed(
    db, settings, tcgcsv_server, tmp_path
) -> None:
    settings.POKEWATCH_TCGCSV_URL = tcgcsv_server.url
    settings.POKEWATCH_TCGCSV_CACHE_DIR = tmp_path
    tcgcsv_server.corrupt(DAY1)
    with pytest.raises(CommandError, match="1 day\\(s\\) failed and wrote nothing"):
        call_command(
            "collect_prices",
            "--source",
            "tcgcsv",
            "--date",
            str(DAY1),
            "--group",
            "23381",
            stdout=StringIO(),
        )
    with pytest.raises(CommandError, match="only apply to --source tcgcsv"):
        call_command("collect_prices", "--source", "simulated", "--force", stdout=StringIO())


class _Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_collect_prices_shows_a_progress_bar(
    db, settings, tcgcsv_server, tmp_path
) -> None:
    settings.POKEWATCH_TCGCSV_URL = tcgcsv_server.url
    settings.POKEWATCH_TCGCSV_CACHE_DIR = tmp_path
    settings.POKEWATCH_TCGCSV_GROUPS = GROUPS
    tcgcsv_server.missing(DAY1 - timedelta(days=1))
    out = _Terminal()
    call_command("collect_prices", "--date", str(DAY2), "--days", "3", stdout=out)

    text = out.getvalue()
    priced = sum(DAY1_PRICED.values()) + sum(DAY2_PRICED.values())
    assert "3/3" in text and ("day/s" in text or "s/day" in text)  # days done and the rate
    assert f"{DAY2} {priced:,} prices" in text  # the bar's running count
    assert "2025-09-20: missing: tcgcsv: no archive for 2025-09-20" in text
    assert "2025-09-21: 1," not in text  # no plain per-day lines under a bar


def test_a_long_backfill_under_debug_keeps_no_query_log(db, settings, tcgcsv_client, week) -> None:
    from django.db import connection

    settings.DEBUG = True  # the laptop default: Django would keep 9,000 queries per connection
    logged: list[int] = []
    collect(
        tcgcsv_client, week[-1], days=3, on_day=lambda _: logged.append(len(connection.queries))
    )
    assert logged == [0, 0, 0]
