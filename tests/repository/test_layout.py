"""The tests mirror the code (README.md, "Tests").

* A test module is ``tests/<package>/test_<module>.py``, or ``test_<module>_<topic>.py`` when
  a module's tests are split by topic, where ``<package>`` is one of the project's packages
  and ``<module>`` one of its modules or subpackages (``commands`` for its management
  commands); a subpackage's tests are in the matching folder (``tests/prices/sources/``).
  The repository's own files (Dockerfile, compose, workflows, the import graph, this
  layout) are tested under ``tests/repository/``.
* No test module imports another: what tests share are fixtures (``conftest.py`` files) or
  plain helpers in ``tests/support``, which is all that code under ``tests`` may import
  from ``tests`` (dotted names in strings, such as a ``pytest.mark.urls`` URL conf, too).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support import ROOT

TESTS = ROOT / "tests"
REPOSITORY = "repository"  # tests of the repository's files rather than of a package
SUPPORT = "tests.support"
DOTTED_NAME = re.compile(r"^\w+(\.\w+)*$")
# Calls and assignments that import a module given by name as a string.
NAME_IMPORTING_CALLS = {"urls", "override_settings", "import_module", "__import__"}
NAME_IMPORTING_ASSIGNMENTS = {"pytest_plugins", "ROOT_URLCONF", "urlconf"}


def project_packages(root: Path = ROOT) -> set[str]:
    """The top-level Python packages of the repository (folders with an ``__init__.py``)."""
    return {p.parent.name for p in root.glob("*/__init__.py")} - {"tests"}


def modules_of(package_dir: Path) -> set[str]:
    """What a test file may be named after: the folder's modules and subpackages, and
    ``commands`` if it has management commands."""
    names = {p.stem for p in package_dir.glob("*.py")} - {"__init__"}
    names |= {p.parent.name for p in package_dir.glob("*/__init__.py")}
    if (package_dir / "management" / "commands").is_dir():
        names.add("commands")
    return names


def misplaced(path: Path, root: Path = ROOT) -> str | None:
    """Why the test module at ``path`` is not where the layout puts it (None if it is)."""
    folders = path.relative_to(root / "tests").parts[:-1]
    if not folders:
        return "is directly under tests/, not in a package's folder"
    if folders[0] == REPOSITORY:
        return "is in a subfolder of tests/repository/" if len(folders) > 1 else None
    if folders[0] not in project_packages(root):
        return f"is under tests/{folders[0]}/, which is no package of the project"
    package_dir = root.joinpath(*folders)
    if not (package_dir / "__init__.py").is_file():
        return f"is under tests/{'/'.join(folders)}/, but {'/'.join(folders)} is no package"
    name = path.stem.removeprefix("test_")
    if not any(name == m or name.startswith(f"{m}_") for m in modules_of(package_dir)):
        return f"names no module of {'/'.join(folders)}: test_<module>[_<topic>].py"
    return None


def module_names(node: ast.AST) -> list[str]:
    """The dotted module names a string-taking call or assignment imports by name."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        parts: list[ast.AST] = [*node.args, *(k.value for k in node.keywords)]
        if name not in NAME_IMPORTING_CALLS:
            return []
    elif isinstance(node, ast.Assign):
        targets = {getattr(target, "id", "") for target in node.targets}
        if not targets & NAME_IMPORTING_ASSIGNMENTS:
            return []
        parts = [node.value]
    else:
        return []
    return [
        value.value
        for part in parts
        for value in ast.walk(part)
        if isinstance(value, ast.Constant)
        and isinstance(value.value, str)
        and DOTTED_NAME.match(value.value)
    ]


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """The modules under ``tests`` other than ``tests.support`` that ``source`` imports,
    absolutely or relatively, lazy imports too, and those it names to pytest or Django
    (``pytest.mark.urls("tests.x")``, ``pytest_plugins``, ``import_module``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.append("." * node.level + (node.module or ""))
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "tests":
            names = [f"tests.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            names = module_names(node)
        found += [
            name
            for name in names
            if (name == "tests" or name.startswith("tests."))
            and name != SUPPORT
            and not name.startswith(f"{SUPPORT}.")
        ]
    return found


def test_every_test_module_is_in_the_folder_of_what_it_tests() -> None:
    problems = {
        str(path.relative_to(ROOT)): why
        for path in sorted(TESTS.rglob("test_*.py"))
        if (why := misplaced(path)) is not None
    }
    assert problems == {}


def test_no_code_under_tests_imports_a_test_module() -> None:
    problems = {
        str(path.relative_to(ROOT)): found
        for path in sorted(TESTS.rglob("*.py"))
        if (found := forbidden_imports(path.read_text(encoding="utf-8"), str(path)))
    }
    assert problems == {}


def test_every_test_folder_is_a_package() -> None:
    """Two ``test_commands.py`` in different folders need packages to be told apart."""
    folders = {path.parent for path in TESTS.rglob("*.py")} - {TESTS / "fixtures"}
    assert (
        sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file()) == []
    )


def test_the_layout_rules_catch_what_they_should(tmp_path: Path) -> None:
    for name in (
        "prices/__init__.py",
        "prices/views.py",
        "prices/sources/__init__.py",
        "prices/sources/tcgcsv.py",
        "prices/management/commands/__init__.py",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    tests = tmp_path / "tests"
    assert misplaced(tests / "prices" / "test_views.py", tmp_path) is None
    assert misplaced(tests / "prices" / "test_views_cards.py", tmp_path) is None
    assert misplaced(tests / "prices" / "test_commands.py", tmp_path) is None
    assert misplaced(tests / "prices" / "sources" / "test_tcgcsv.py", tmp_path) is None
    assert misplaced(tests / "repository" / "test_dockerfile.py", tmp_path) is None
    assert misplaced(tests / "test_views.py", tmp_path) is not None
    assert misplaced(tests / "api" / "test_views.py", tmp_path) is not None
    assert misplaced(tests / "prices" / "test_viewscards.py", tmp_path) is not None
    assert misplaced(tests / "prices" / "test_tcgcsv.py", tmp_path) is not None
    assert misplaced(tests / "prices" / "nowhere" / "test_views.py", tmp_path) is not None

    assert forbidden_imports("from tests.support import ROOT\nimport tests.support.api\n") == []
    assert forbidden_imports("from tests.support.api import LAST\n") == []
    assert forbidden_imports("from tests.conftest import ROOT\n") == ["tests.conftest"]
    assert forbidden_imports("def f():\n    from tests.prices.test_views import x\n") == [
        "tests.prices.test_views"
    ]
    assert forbidden_imports("import tests.api_fixtures\n") == ["tests.api_fixtures"]
    assert forbidden_imports("from tests import conftest, support\n") == ["tests.conftest"]
    assert forbidden_imports("from .test_keys import y\n") == [".test_keys"]
    assert forbidden_imports("from . import conftest\n") == ["."]
    assert forbidden_imports('pytestmark = pytest.mark.urls("tests.accounts.urls")\n') == [
        "tests.accounts.urls"
    ]
    assert forbidden_imports('pytest_plugins = ["tests.api_fixtures"]\n') == ["tests.api_fixtures"]
    assert forbidden_imports('pytestmark = pytest.mark.urls("tests.support.whoami_urls")\n') == []
    assert forbidden_imports('ROOT_URLCONF = "tests.support.whoami_urls"\n') == []
    assert forbidden_imports('WORKFLOW = "tests.yml"\nprint("tests.conftest")\n') == []
