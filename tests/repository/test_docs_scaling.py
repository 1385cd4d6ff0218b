"""docs/scaling.md cites the command behind every number it uses (issue 15, "Done means").

- Every section (``##``, and the introduction before the first) with a figure in it (a
  digit outside code spans, links and its heading) names at least one command:
  ``python -m benchmarks.<module>``, ``make bench`` or ``pytest tests/<file>``. A section
  that loses its command fails.
- Every cited benchmark module exists and its docstring shows that command (so the doc and
  the benchmark agree on how the figure is made); every cited test file exists, and every
  cited ``tests/…py::test_name`` is a test function of that file.
- The sections the issue asks for are there (throughput, pipeline, PostgreSQL, Redis, the
  capacity table, failures), so that dropping one is not a way to pass.
- docs/benchmarks.md has the capacity benchmark's section with its command, and the
  ``bench`` target of the Makefile runs it.
"""

from __future__ import annotations

import ast
import re
from functools import cache

import pytest

from tests.support import ROOT

SCALING = ROOT / "docs" / "scaling.md"
BENCHMARKS_DOC = ROOT / "docs" / "benchmarks.md"
MAKEFILE = ROOT / "Makefile"

BENCHMARK = re.compile(r"python -m benchmarks\.([a-z_]+)")
TEST = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")
COMMAND = re.compile(r"python -m benchmarks\.[a-z_]+|make bench\b|pytest tests/")
# The topics the issue asks for, each matched in some section heading.
REQUIRED = {
    "throughput": r"requests per second",
    "pipeline": r"pipeline",
    "postgresql": r"postgresql",
    "redis": r"redis",
    "capacity table": "100\N{MULTIPLICATION SIGN}",
    "failures": r"fail",
}


@cache
def sections() -> dict[str, str]:
    """``## heading`` -> the text under it (up to the next ``##``), the heading excluded;
    what comes before the first ``##`` (the title excluded) is the ``(introduction)``."""
    found: dict[str, str] = {}
    if not SCALING.is_file():
        return found
    heading = "(introduction)"
    found[heading] = ""
    for line in SCALING.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            found[heading] = ""
        elif not line.startswith("# "):
            found[heading] += line + "\n"
    return found


def figures(text: str) -> list[str]:
    """Lines of ``text`` with a figure: a digit outside code spans and link targets."""
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue  # a sub-heading
        bare = re.sub(r"`[^`]*`", "", line)
        bare = re.sub(r"\]\([^)]*\)", "]", bare)
        if re.search(r"\d", bare):
            lines.append(line)
    return lines


def docstring(module: str) -> str:
    path = ROOT / "benchmarks" / f"{module}.py"
    assert path.is_file(), f"docs/scaling.md cites benchmarks.{module}, which does not exist"
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def test_the_doc_exists_with_the_sections_the_issue_asks_for() -> None:
    headings = [h.lower() for h in sections()]
    for topic, pattern in REQUIRED.items():
        assert any(re.search(pattern, h) for h in headings), f"no section on {topic}: {headings}"


@pytest.mark.parametrize("heading", list(sections()) or ["(no sections)"])
def test_every_section_with_figures_cites_a_command(heading: str) -> None:
    text = sections().get(heading, "")
    numbered = figures(text)
    if numbered:
        assert COMMAND.search(text), (
            f"section {heading!r} has figures but no command (python -m benchmarks.…, "
            f"make bench or pytest tests/…); first: {numbered[0].strip()[:120]!r}"
        )


def test_every_cited_benchmark_exists_and_its_docstring_shows_the_command() -> None:
    cited = set(BENCHMARK.findall(SCALING.read_text(encoding="utf-8")))
    assert {"api", "pipeline", "capacity"} <= cited
    for module in sorted(cited):
        assert f"python -m benchmarks.{module}" in docstring(module), (
            f"benchmarks/{module}.py's docstring does not show `python -m benchmarks.{module}`"
        )


def test_every_cited_test_exists() -> None:
    cited = TEST.findall(SCALING.read_text(encoding="utf-8"))
    assert cited, "the failure section names no test"
    for path, name in cited:
        source = ROOT / path
        assert source.is_file(), f"docs/scaling.md cites {path}, which does not exist"
        if name:
            tree = ast.parse(source.read_text(encoding="utf-8"))
            functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert name in functions, f"docs/scaling.md cites {path}::{name}, not a test there"


def test_the_capacity_benchmark_has_its_figures_and_a_place_in_make_bench() -> None:
    benchmarks_doc = BENCHMARKS_DOC.read_text(encoding="utf-8")
    assert "python -m benchmarks.capacity" in benchmarks_doc
    bench = re.search(r"^bench:.*?(?=^\S|\Z)", MAKEFILE.read_text(), re.MULTILINE | re.DOTALL)
    assert bench is not None and "-m benchmarks.capacity" in bench.group(0)


def test_the_checks_fail_on_a_section_without_its_command() -> None:
    text = "Requests per second: 1,247 on 2 cores.\n"
    assert figures(text) and not COMMAND.search(text)
    assert not figures("Only `POKEWATCH_SERVING_WINDOW_DAYS` and [a link](docs/x2.md).\n")
