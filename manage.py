#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokewatch_site.settings")
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:
        # Most often DATABASE_URL names a server that is down or a database not created
        # yet: say so in one line rather than a traceback (--traceback shows it).
        if "--traceback" in sys.argv:
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
        sys.stderr.write(
            f"database error: {reason} (is the server of DATABASE_URL running, and was its "
            "database created, e.g. with createdb?)\n"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
