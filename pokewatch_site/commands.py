"""What every PokeWatch management command shares: bad input ends in one clear line.

Django prints a ``CommandError`` raised by ``handle()`` as one line and exits 1, but two
kinds of bad input escape that path:

* argparse's own errors (an invalid int, an unknown choice) print the whole usage (five
  lines of Django's common options) before the message;
* an option's ``type=`` function runs while the arguments are parsed, before Django's
  ``try``: a ``CommandError`` raised there ends in a traceback.

:class:`PokeWatchCommand` gives a command a parser whose errors are one line
(``manage.py score: error: argument --since: …``, exit 2), and the ``type=`` functions
below raise ``argparse.ArgumentTypeError``, which argparse turns into such an error.
Called from code (``call_command``) the parser raises ``CommandError`` instead, as
Django's does.
"""

from __future__ import annotations

import argparse
import re
from datetime import date
from decimal import Decimal
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser

#: A plain decimal: digits, an optional fraction; no sign, exponent, ``_`` or spaces.
PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class OneLineParser(CommandParser):
    """A command parser whose errors are one line, without the usage."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
        raise CommandError(f"Error: {message}")


class PokeWatchCommand(BaseCommand):
    """A management command whose bad arguments give one line and exit 2."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a CommandParser; this subclass only changes how errors are shown.
        parser.__class__ = OneLineParser
        return parser


def iso_date(value: str) -> date:
    """``type=`` of a date option: a real ``YYYY-MM-DD`` day."""
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a YYYY-MM-DD date, got {value!r}") from None


def non_negative_int(value: str) -> int:
    """``type=`` of a count that may be 0."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value!r}")
    return number


def positive_int(value: str) -> int:
    """``type=`` of a count of at least 1."""
    number = non_negative_int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value!r}")
    return number


def port(value: str) -> int:
    """``type=`` of a TCP port."""
    number = non_negative_int(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port between 1 and 65535, got {value!r}")
    return number


def non_negative_decimal(value: str) -> Decimal:
    """``type=`` of an amount: a plain decimal (``12.50``), 0 or more."""
    if not PLAIN_DECIMAL.fullmatch(value):
        raise argparse.ArgumentTypeError(f"must be a plain decimal like 12.50, got {value!r}")
    return Decimal(value)
