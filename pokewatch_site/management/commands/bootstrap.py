from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser

from accounts.keys import create_key, resolve_key
from pipelines.models import ModelVersion
from pokewatch_site.commands import PokeWatchCommand, non_negative_int, port
from pokewatch_site.errors import PokeWatchError
from prices.cards import import_cards_file
from prices.csv_import import parse_price_csv
from prices.ingestion import score_new_prices, upsert_prices
from prices.models import PricePoint
from prices.sources.base import PriceRow

DEMO_KEY_FILE = "demo_api_key.txt"
DEMO_SOURCE = "tcgplayer-demo"
REPLAY_DAYS = 120
REPLAY_STEP_DAYS = 7


def ensure_demo_key(path: Path) -> str:
    """The demo key from ``path`` if it is still valid, else a new one written there."""
    if path.exists():
        raw = path.read_text(encoding="utf-8").strip()
        if resolve_key(raw) is not None:
            return raw
    _, raw = create_key("demo", owner="make run")
    path.write_text(raw + "\n", encoding="utf-8")
    path.chmod(0o600)
    return raw


def shown_path(path: Path) -> str:
    """``path`` relative to the repository if it is inside it (``var/…``), else in full."""
    try:
        return str(path.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        return str(path.resolve())


def split_at(rows: Sequence[PriceRow], days_before_end: int) -> tuple[list, list]:
    """Rows up to ``days_before_end`` days before the last date, and the rest."""
    if not rows or days_before_end <= 0:
        return list(rows), []
    cut = max(r.date for r in rows) - timedelta(days=days_before_end)
    return [r for r in rows if r.date <= cut], [r for r in rows if r.date > cut]


class Command(PokeWatchCommand):
    help = (
        "Prepare a local installation (run by `make run`): load the card universe and the "
        "demo cards; on an empty database, import the bundled demo price history, train "
        "once on all but its last --replay-days days, then import those week by week as a "
        "daily collection would, so the demo has served and graded signals; and make sure a "
        "demo API key exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-train", dest="train", action="store_false", help="skip the first training run"
        )
        parser.add_argument(
            "--replay-days",
            type=non_negative_int,
            default=REPLAY_DAYS,
            help=f"days of the demo history imported after the first training (default "
            f"{REPLAY_DAYS}; 0 trains on everything)",
        )
        parser.add_argument(
            "--port", type=port, default=8000, help="port shown in the curl example"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        replay: list[PriceRow] = []
        try:
            for path in (settings.POKEWATCH_CARDS_FILE, settings.POKEWATCH_DEMO_CARDS_FILE):
                result = import_cards_file(path)
                name = path.relative_to(settings.BASE_DIR)
                self.stdout.write(f"cards from {name}: {result.summary()}")
            if PricePoint.objects.exists():
                self.stdout.write("prices already loaded; demo history not imported again")
            else:
                replay = self._import_demo(options["replay_days"] if options["train"] else 0)
        except PokeWatchError as exc:
            raise CommandError(exc.detail) from exc
        if options["train"] and not ModelVersion.objects.filter(is_champion=True).exists():
            self.stdout.write("no champion model yet: training once (a minute or two)…")
            call_command("run_pipeline", stdout=self.stdout)
        if replay:
            self._replay(replay)
        key_file = Path(settings.VAR_DIR) / DEMO_KEY_FILE
        raw = ensure_demo_key(key_file)
        self.stdout.write(f"demo API key (also in {shown_path(key_file)}): {raw}")
        self.stdout.write(
            f'try: curl -H "X-API-Key: {raw}" http://127.0.0.1:{options["port"]}/api/v1/signals/'
        )
        self.stdout.write(self.style.SUCCESS("bootstrap done"))

    def _import_demo(self, replay_days: int) -> list[PriceRow]:
        """Import the demo history but its last ``replay_days`` days; return those."""
        path = settings.POKEWATCH_DEMO_PRICES_FILE
        with path.open(encoding="utf-8", newline="") as handle:
            parsed = parse_price_csv(handle, name=str(path))
        now, later = split_at(parsed.rows, replay_days)
        held = f", holding back its last {replay_days} days to replay" if later else ""
        self.stdout.write(f"importing the bundled demo price history{held}…")
        self.stdout.write(upsert_prices(now, source=DEMO_SOURCE).summary())
        return later

    def _replay(self, rows: list[PriceRow]) -> None:
        """Import ``rows`` a week at a time: each import is scored by the champion, its
        signals enter the track record, and earlier ones are graded."""
        days = sorted({r.date for r in rows})
        self.stdout.write(
            f"replaying {days[0]} … {days[-1]} a week at a time, as daily collection would…"
        )
        start = days[0]
        while start <= days[-1]:
            end = start + timedelta(days=REPLAY_STEP_DAYS)
            week = [r for r in rows if start <= r.date < end]
            if week:
                result = score_new_prices(upsert_prices(week, source=DEMO_SOURCE))
                self.stdout.write(
                    f"  {start} … {end - timedelta(days=1)}: {result.received} prices, "
                    f"{result.scored or 0} new predictions"
                )
            start = end
        call_command("score", stdout=self.stdout)  # reports the track record's grading
