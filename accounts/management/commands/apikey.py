"""``apikey create|list|revoke|check``: manage API keys from the shell.

The full key is printed once, by ``create``, alone on the last line of stdout, so that
scripts can take it with ``tail -n 1``. No other subcommand ever prints it.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from accounts.keys import CACHE_TTL, KeyStatus, create_key, key_status, revoke_key, unreached
from accounts.models import APIKey
from pokewatch_site.commands import OneLineParser, PokeWatchCommand, iso_date
from pokewatch_site.errors import PokeWatchError


def _when(value: datetime | None, empty: str) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else empty


class Command(PokeWatchCommand):
    help = "Create, list, revoke and check API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action", required=True, metavar="ACTION", parser_class=OneLineParser
        )
        create = sub.add_parser("create", help="create a key and print it, once")
        create.add_argument("name", help="a label for the key (50 characters at most)")
        create.add_argument("--owner", default="", help="who the key is for")
        create.add_argument(
            "--expires", type=iso_date, help="last day (UTC) the key works, YYYY-MM-DD"
        )
        create.add_argument("--rate", default="", help="own rate limit, e.g. 120/m")
        sub.add_parser("list", help="list keys (never the full keys)")
        revoke = sub.add_parser("revoke", help="revoke a key, effective at once")
        revoke.add_argument("prefix", help="the key's prefix (the part before the dot)")
        check = sub.add_parser("check", help="say whether a key is accepted; exit 1 if not")
        check.add_argument("key", help='the full key, or "-" to read it from stdin')

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            getattr(self, f"handle_{action}")(**options)
        except PokeWatchError as exc:
            raise CommandError(exc.detail) from exc

    def handle_create(
        self, name: str, owner: str, expires: date | None, rate: str, **_: Any
    ) -> None:
        key, raw_key = create_key(name, owner=owner, expires=expires, rate=rate)
        self.stdout.write(f'Created API key "{key.name}" (prefix {key.prefix}).')
        self.stdout.write(f"Owner:   {key.owner or '-'}")
        self.stdout.write(f"Expires: {_when(key.expiry_date, 'never')}")
        self.stdout.write(f"Rate:    {key.rate or 'endpoint default'}")
        self.stdout.write("Store the key now; it will not be shown again. Key on the next line:")
        self.stdout.write(raw_key)

    def handle_list(self, **_: Any) -> None:
        keys = APIKey.objects.order_by("created")
        if not keys:
            self.stdout.write("No API keys.")
            return
        row = "{:<8}  {:<24}  {:<20}  {:<20}  {:<20}  {:<7}  {:<20}  {}"
        self.stdout.write(
            row.format(
                "PREFIX", "NAME", "OWNER", "CREATED", "EXPIRES", "REVOKED", "LAST USED", "RATE"
            )
        )
        for key in keys:
            self.stdout.write(
                row.format(
                    key.prefix,
                    key.name,
                    key.owner or "-",
                    _when(key.created, "-"),
                    _when(key.expiry_date, "never"),
                    "yes" if key.revoked else "no",
                    _when(key.last_used_at, "never"),
                    key.rate or "default",
                )
            )

    def handle_revoke(self, prefix: str, **_: Any) -> None:
        key = revoke_key(prefix)
        if unreached(key.prefix):
            until = timezone.now() + timedelta(seconds=CACHE_TTL)
            raise CommandError(
                f"Revoked API key {key.prefix} in the database, but the shared cache (Redis) "
                f"could not be reached: other processes may accept it until {until:%H:%M:%S} "
                f"UTC ({CACHE_TTL} s). Run this command again once Redis answers to make it "
                "effective at once."
            )
        self.stdout.write(f'Revoked API key {key.prefix} ("{key.name}").')

    def handle_check(self, key: str, **_: Any) -> None:
        raw_key = sys.stdin.readline().strip() if key == "-" else key.strip()
        status, api_key = key_status(raw_key)
        if status is KeyStatus.UNKNOWN or api_key is None:
            raise CommandError("unknown: no API key matches.")
        described = f'API key {api_key.prefix} ("{api_key.name}")'
        if status is not KeyStatus.VALID:
            raise CommandError(f"{status}: {described} is {status}.")
        expires = _when(api_key.expiry_date, "never")
        self.stdout.write(
            f"valid: {described}, expires {expires}, rate {api_key.rate or 'default'}."
        )
