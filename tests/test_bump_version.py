"""scripts/bump_version.py on a copy of the project's pyproject.toml."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "bump_version.py"

_spec = importlib.util.spec_from_file_location("bump_version", SCRIPT)
assert _spec and _spec.loader
bump_version = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bump_version", bump_version)
_spec.loader.exec_module(bump_version)


def _version(path: Path) -> str:
    return tomllib.loads(path.read_text(encoding="utf-8"))["project"]["version"]


@pytest.fixture
def pyproject(tmp_path: Path) -> Path:
    """A copy of the real pyproject.toml with its version set to 1.4.2."""
    path = tmp_path / "pyproject.toml"
    shutil.copy(ROOT / "pyproject.toml", path)
    text = path.read_text(encoding="utf-8")
    path.write_text(bump_version.replace_version(text, "1.4.2"), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("target", "expected"),
    [("patch", "1.4.3"), ("minor", "1.5.0"), ("major", "2.0.0"), ("1.10.0", "1.10.0")],
)
def test_bump(pyproject: Path, capsys, target: str, expected: str) -> None:
    before = pyproject.read_text(encoding="utf-8")

    assert bump_version.main([target, "--file", str(pyproject)]) == 0

    assert _version(pyproject) == expected
    out = capsys.readouterr().out.splitlines()
    assert out[0] == expected
    assert f'git tag -a v{expected} -m "v{expected}"' in "\n".join(out)
    # Only the version line changed.
    after = pyproject.read_text(encoding="utf-8")
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert changed == [('version = "1.4.2"', f'version = "{expected}"')]


def test_dry_run_writes_nothing(pyproject: Path, capsys) -> None:
    before = pyproject.read_bytes()

    assert bump_version.main(["minor", "--file", str(pyproject), "--dry-run"]) == 0

    assert pyproject.read_bytes() == before
    assert capsys.readouterr().out.splitlines()[0] == "1.5.0"


@pytest.mark.parametrize("target", ["1.4", "v1.5.0", "01.5.0", "1.5.0-", "banana", "1.4.2"])
def test_rejects_invalid_or_not_greater(pyproject: Path, capsys, target: str) -> None:
    before = pyproject.read_bytes()

    assert bump_version.main([target, "--file", str(pyproject)]) == 1

    assert pyproject.read_bytes() == before
    assert "error:" in capsys.readouterr().err


def test_rejects_downgrade(pyproject: Path) -> None:
    with pytest.raises(bump_version.VersionError, match="not greater"):
        bump_version.bump_file(pyproject, "1.4.2-rc.1")


def test_prerelease_and_build(pyproject: Path) -> None:
    rc1 = "2.0.0-rc.1+build.7"
    assert bump_version.bump_file(pyproject, rc1) == ("1.4.2", rc1)
    assert bump_version.bump_file(pyproject, "2.0.0-rc.2") == (rc1, "2.0.0-rc.2")
    # Releasing a pre-release drops its suffix rather than skipping a version.
    assert bump_version.bump_file(pyproject, "major") == ("2.0.0-rc.2", "2.0.0")


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-beta.2", "1.0.0-beta.11"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.9.0", "1.10.0"),
    ],
)
def test_semver_precedence(lower: str, higher: str) -> None:
    parse = bump_version.Version.parse
    assert parse(lower).precedence() < parse(higher).precedence()


def test_invalid_current_version(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\nversion = "1.0"\n', encoding="utf-8")

    with pytest.raises(bump_version.VersionError, match="not a semantic version"):
        bump_version.bump_file(path, "patch")


def test_only_the_project_table_version_changes(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.other]\nversion = "9.9.9"\n\n[project]\nname = "x"\nversion = "0.1.0"\n',
        encoding="utf-8",
    )

    bump_version.bump_file(path, "minor")

    assert path.read_text(encoding="utf-8") == (
        '[tool.other]\nversion = "9.9.9"\n\n[project]\nname = "x"\nversion = "0.2.0"\n'
    )


def test_real_pyproject_version_is_semver() -> None:
    bump_version.Version.parse(_version(ROOT / "pyproject.toml"))
