"""A local tcgcsv.com for tests: the files under tests/fixtures/tcgcsv at their real paths.

``TcgcsvServer`` (the ``tcgcsv_server`` fixture of tests/prices/conftest.py) answers
``/tcgplayer/3/groups``, ``/tcgplayer/3/{groupId}/products`` and ``/prices`` for three real
groups, and ``/archive/tcgplayer/prices-YYYY-MM-DD.ppmd.7z`` for two real days (see
tests/fixtures/tcgcsv/README.md), and ``/last-updated.txt`` (the live prices are DAY2's unless
a test sets ``live_day``). Helpers make a day missing or corrupt, fail or slow a path, or serve
one real archive under other days' names (its folders keep the original date) so that
backfills can run over many days. No network, no database.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import py7zr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tcgcsv"
CATEGORY = 3
DAY1 = date(2025, 9, 21)
DAY2 = date(2025, 9, 22)

# The three groups with products/prices fixtures: 151, Temporal Forces, Prismatic Evolutions.
GROUP_151, GROUP_TEF, GROUP_PRE = 23237, 23381, 23821
FIXTURE_GROUPS = (GROUP_151, GROUP_TEF, GROUP_PRE)

# Rows of each group's price file with a marketPrice of at least a cent once rounded (priced)
# and without (unpriced: null, 0, negative), counted
# once from the real archives with the snippet in tests/fixtures/tcgcsv/README.md.
DAY1_PRICED = {GROUP_151: 396, GROUP_TEF: 391, GROUP_PRE: 493}  # 1,280
DAY1_UNPRICED = {GROUP_151: 1, GROUP_TEF: 2, GROUP_PRE: 1}
DAY2_PRICED = {GROUP_151: 396, GROUP_TEF: 390, GROUP_PRE: 493}  # 1,279; also the live files
DAY2_UNPRICED = {GROUP_151: 1, GROUP_TEF: 3, GROUP_PRE: 1}
# The whole of category 3 (208 groups both days), counted the same way.
DAY1_CATEGORY_PRICED, DAY1_CATEGORY_UNPRICED, DAY1_CATEGORY_GROUPS = 41_569, 1_066, 208
DAY2_CATEGORY_PRICED, DAY2_CATEGORY_UNPRICED, DAY2_CATEGORY_GROUPS = 41_606, 1_066, 208

_ARCHIVE = re.compile(r"^/archive/tcgplayer/prices-(\d{4}-\d{2}-\d{2})\.ppmd\.7z$")


def archive_path(day: date) -> str:
    """The URL path of a day's archive (also its path under a client's ``cache_dir``)."""
    return f"/archive/tcgplayer/prices-{day.isoformat()}.ppmd.7z"


def build_archive(files: dict[str, bytes | str]) -> bytes:
    """A small 7z (LZMA2) holding ``files`` (name -> content), for malformed-content tests."""
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(content.encode() if isinstance(content, str) else content, name)
    return buffer.getvalue()


class TcgcsvServer:
    """Serves FIXTURES at their relative paths, 404 for anything else; records request paths."""

    def __init__(self, httpserver: HTTPServer) -> None:
        self.httpserver = httpserver
        self.requests: list[str] = []
        self._missing: set[date] = set()
        self._corrupt: dict[date, str] = {}
        self._interrupted: dict[date, int] = {}
        self._copies: dict[date, date] = {}
        self._bodies: dict[str, tuple[int, bytes]] = {}
        self._failures: list[list] = []  # [path suffix, status, times left]
        self._delays: list[list] = []  # [path suffix, seconds, times left]
        self.live_day = DAY2  # the day of the live prices, as /last-updated.txt says
        httpserver.expect_request(re.compile("^/.*")).respond_with_handler(self._handle)

    @property
    def url(self) -> str:
        return self.httpserver.url_for("/").rstrip("/")

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> None:
        """Waits until ``count`` requests have reached the server (after clients timed out)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.requests) >= count, f"{self.requests} after {timeout} s"

    def archive_requests(self, day: date | None = None) -> list[str]:
        paths = [p for p in self.requests if _ARCHIVE.match(p)]
        return paths if day is None else [p for p in paths if p == archive_path(day)]

    def missing(self, day: date) -> None:
        """The day's archive answers 404, even if a fixture exists."""
        self._missing.add(day)

    def corrupt(self, day: date, how: str = "truncated") -> None:
        """The day's archive is served as its first half ("truncated") or as HTML ("garbage")."""
        assert how in ("truncated", "garbage")
        self._corrupt[day] = how

    def interrupt(self, day: date, times: int = 1) -> None:
        """The day's archive announces its full length but the body stops halfway."""
        self._interrupted[day] = times

    def add_archive_copy(self, day: date, from_day: date) -> None:
        """Serve ``from_day``'s fixture archive (folders still dated ``from_day``) as ``day``'s."""
        self._copies[day] = from_day

    def add_archive(self, day: date, files: dict[str, bytes | str]) -> None:
        """Serve a small archive built from ``files`` as ``day``'s."""
        self.serve(archive_path(day), build_archive(files))

    def serve(self, path: str, body: bytes | str, status: int = 200) -> None:
        """Answer ``path`` with this body and status instead of the fixture file."""
        self._bodies[path] = (status, body.encode() if isinstance(body, str) else body)

    def fail(self, path_suffix: str, status: int, times: int = 1) -> None:
        """The next ``times`` requests whose path ends with ``path_suffix`` answer ``status``."""
        self._failures.append([path_suffix, status, times])

    def delay(self, path_suffix: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` matching requests wait ``seconds`` before answering."""
        self._delays.append([path_suffix, seconds, times])

    def _handle(self, request: Request) -> Response:
        path = request.path
        self.requests.append(path)
        if delay := _take(self._delays, path):
            time.sleep(delay)
        if status := _take(self._failures, path):
            return Response(f"error {status}", status=status)
        if path in self._bodies:
            status, body = self._bodies[path]
            return Response(body, status=status)
        if path == "/last-updated.txt":  # the site's format, refreshed in the evening (UTC)
            return Response(f"{self.live_day.isoformat()}T20:06:33+0000", status=200)
        match = _ARCHIVE.match(path)
        if match:
            return self._archive(date.fromisoformat(match.group(1)))
        return _file(path)

    def _archive(self, day: date) -> Response:
        if day in self._missing:
            return Response("not found", status=404)
        response = _file(archive_path(self._copies.get(day, day)))
        if response.status_code != 200:
            return response
        data = response.get_data()
        if self._corrupt.get(day) == "garbage":
            return Response(b"<html>" + b"garbage " * 1000 + b"</html>", status=200)
        if self._corrupt.get(day) == "truncated":
            return Response(data[: len(data) // 2], status=200)
        if self._interrupted.get(day, 0) > 0:
            self._interrupted[day] -= 1

            def half() -> Iterator[bytes]:
                yield data[: len(data) // 2]
                raise ConnectionAbortedError("the test server drops the connection")

            response = Response(half(), status=200, direct_passthrough=True)
            response.headers["Content-Length"] = str(len(data))
        return response


def _take(rules: list[list], path: str) -> float | int | None:
    for rule in rules:
        if path.endswith(rule[0]) and rule[2] > 0:
            rule[2] -= 1
            return rule[1]
    return None


def _file(path: str) -> Response:
    target = (FIXTURES / path.lstrip("/")).resolve()
    if not target.is_relative_to(FIXTURES) or not target.is_file() or target.name == "README.md":
        return Response("not found", status=404)
    content_type = "application/json" if "." not in target.name else "application/octet-stream"
    return Response(target.read_bytes(), status=200, content_type=content_type)
