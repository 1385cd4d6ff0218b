"""Bulk writes through PostgreSQL's COPY, shared by price ingestion and prediction publishing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

_FLUSH_CHARS = 1024 * 1024


def copy_lines(
    cursor: Any,
    table: str,
    columns: Sequence[str],
    blocks: Iterable[str],
    *,
    total: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Stream tab-separated text into ``table`` with ``COPY … FROM STDIN``.

    ``blocks`` yields text made of whole lines (one line or many), each line ending in a
    newline. ``cursor`` is Django's cursor wrapper on a psycopg 3 connection. Values must
    not contain tabs, newlines or backslashes (ids, dates, numbers and plain codes) unless
    escaped as COPY's text format wants (``ingestion._copy_text``).
    """
    raw = cursor.cursor  # the psycopg cursor under Django's wrapper
    buffer: list[str] = []
    size = rows = 0
    with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for block in blocks:
            buffer.append(block)
            size += len(block)
            if size >= _FLUSH_CHARS:
                text = "".join(buffer)
                copy.write(text)
                rows += text.count("\n")
                buffer.clear()
                size = 0
                if progress:
                    progress(f"  copied {rows:,}" + (f" / {total:,} rows" if total else " rows"))
        if buffer:
            copy.write("".join(buffer))
