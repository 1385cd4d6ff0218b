"""The import graph between the Django apps has no cycle (docs/architecture.md, "App
dependencies").

Every import counts, lazy ones inside functions too, as any one of them ties the apps
together. The apps are the project's directories with an ``apps.py``; the site package
(``pokewatch_site``, no ``apps.py``) is the top of the graph and may import any app.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT


def apps(root: Path = ROOT) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/apps.py"))


def imported_tops(source: str, filename: str = "<source>") -> set[str]:
    """The top-level packages ``source`` imports absolutely, anywhere in the file."""
    tops: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            tops.add(node.module.split(".")[0])
    return tops


def app_edges(root: Path = ROOT) -> dict[str, set[str]]:
    """For each app, the other apps its code imports (migrations left out)."""
    names = apps(root)
    edges: dict[str, set[str]] = {name: set() for name in names}
    for name in names:
        for path in (root / name).rglob("*.py"):
            if "migrations" in path.relative_to(root).parts:
                continue
            tops = imported_tops(path.read_text(encoding="utf-8"), str(path))
            edges[name] |= {top for top in tops if top in edges and top != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle of the graph once, as a path that ends where it starts."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt in path:
                cycle = path[path.index(nxt) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    found.append([*cycle, nxt])
            else:
                walk(nxt, [*path, nxt])

    for start in sorted(edges):
        walk(start, [start])
    return found


def test_the_apps_are_found() -> None:
    assert {"accounts", "pipelines", "prices"} <= set(apps())
    assert "pokewatch_site" not in apps()  # the top of the graph, not an app here


def test_there_is_no_import_cycle_between_the_apps() -> None:
    edges = app_edges()
    assert cycles(edges) == [], f"import cycle between apps; edges: {edges}"


def test_the_apps_depend_downwards_only() -> None:
    edges = app_edges()
    assert edges["accounts"] == set(), "accounts imports no other app"
    assert "pipelines" not in edges["prices"], (
        "prices must not import pipelines: announce through prices.signals, reach model "
        "versions through Prediction's foreign key"
    )


def test_lazy_imports_count_and_a_back_edge_is_a_cycle() -> None:
    lazy = "def f():\n    from pipelines.scoring import score\n    import accounts.keys\n"
    assert imported_tops(lazy) == {"pipelines", "accounts"}
    assert imported_tops("from . import models\nfrom .x import y\n") == set()  # same app

    graph = {"accounts": set(), "pipelines": {"prices"}, "prices": {"accounts"}}
    assert cycles(graph) == []
    graph["prices"].add("pipelines")
    assert cycles(graph) == [["pipelines", "prices", "pipelines"]]


def private_library_imports(source: str, library: str, filename: str = "<source>") -> list[str]:
    """``module.name`` of every underscored name ``source`` imports from ``library``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == library:
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def test_rate_limiting_uses_only_django_ratelimit_s_public_api() -> None:
    assert private_library_imports(
        "from django_ratelimit.core import _make_cache_key, get_usage\n", "django_ratelimit"
    ) == ["django_ratelimit.core._make_cache_key"]
    offenders = {
        str(path.relative_to(ROOT)): found
        for folder in ("accounts", "prices", "pipelines", "pokewatch_site", "benchmarks", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if (found := private_library_imports(path.read_text(encoding="utf-8"), "django_ratelimit"))
    }
    assert offenders == {}
