"""The archive reader that :class:`prices.sources.tcgcsv.TcgcsvClient` runs as a child process.

    python -m prices.sources.tcgcsv_archive ARCHIVE CATEGORY [GROUP_ID ...]

writes each price file of the category (of those groups; all if none) to stdout as
``"{groupId} {size} {name}\\n"`` followed by its bytes, in groupId order, and exits with
:data:`UNREADABLE` if the archive cannot be read. pyppmd 1.3.1 never frees a decoder's
input buffer (about the archive's size: 3.5 MB a day, 3.5 GB over a 1,000-day backfill), so
the archive is decompressed here, in a process that ends and gives it back. Only py7zr: no
Django, nothing of the project, so that the child starts quickly.
"""

from __future__ import annotations

import sys
from typing import IO

import py7zr
from py7zr.io import BytesIOFactory

MAX_FILE = 64 << 20  # one price file; the largest real one is ~270 KB
MAX_EXTRACT = 1 << 30  # all bytes decompressed from one archive; a real day is ~72 MB
ARCHIVE_ERRORS = (py7zr.exceptions.ArchiveError, EOFError, ValueError)
UNREADABLE = 3  # exit status when the archive cannot be read


def _group_of(name: str, category: int) -> int | None:
    """The groupId of an archive member named ``*/{category}/{groupId}/prices``, else None."""
    parts = name.split("/")
    if len(parts) >= 3 and parts[-1] == "prices" and parts[-3] == str(category):
        return int(parts[-2]) if parts[-2].isdigit() else None
    return None


def write_price_files(path: str, category: int, wanted: set[int], out: IO[bytes]) -> None:
    """Writes each price file of ``category`` (of ``wanted`` groups, all if empty) to ``out`` as
    ``"{groupId} {size} {name}\\n"`` and its bytes, in groupId order. Runs in the child process.
    """
    with py7zr.SevenZipFile(path, max_extract_size=MAX_EXTRACT) as archive:
        targets = {
            name: group_id
            for name in archive.getnames()
            if (group_id := _group_of(name, category)) is not None
            and (not wanted or group_id in wanted)
        }
        factory = BytesIOFactory(limit=MAX_FILE)
        if targets:  # no targets would mean every file
            archive.extract(targets=list(targets), factory=factory)
    for name, group_id in sorted(targets.items(), key=lambda item: item[1]):
        member = factory.products.get(name)
        data = b""  # a member that was not extracted: the parent reports it as malformed JSON
        if member is not None and member.size() < MAX_FILE:
            member.seek(0)
            data = member.read()
        out.write(f"{group_id} {len(data)} {name}\n".encode() + data)


def main(argv: list[str]) -> int:
    try:
        groups = {int(group_id) for group_id in argv[2:]}
        write_price_files(argv[0], int(argv[1]), groups, sys.stdout.buffer)
    except ARCHIVE_ERRORS as exc:
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return UNREADABLE
    return 0


if __name__ == "__main__":  # the child process of TcgcsvClient._price_files
    sys.exit(main(sys.argv[1:]))
