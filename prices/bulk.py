"""Bulk writes through PostgreSQL's COPY, shared by price ingestion and prediction publishing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

_CHUNK = 50_000


def copy_lines(
    cursor: Any,
    table: str,
    columns: Sequence[str],
    lines: Iterable[str],
    *,
    total: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Stream tab-separated text ``lines`` (each ending in a newline) into ``table``.

    ``cursor`` is Django's cursor wrapper on a psycopg 3 connection. Values must not
    contain tabs, newlines or backslashes (ids, dates, numbers and plain codes).
    """
    raw = cursor.cursor  # the psycopg cursor under Django's wrapper
    buffer: list[str] = []
    written = 0
    with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for line in lines:
            buffer.append(line)
            if len(buffer) >= _CHUNK:
                copy.write("".join(buffer))
                written += len(buffer)
                buffer.clear()
                if progress:
                    progress(f"  copied {written:,}" + (f" / {total:,} rows" if total else " rows"))
        if buffer:
            copy.write("".join(buffer))
