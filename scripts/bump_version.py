"""Bump the project version in pyproject.toml.

    python scripts/bump_version.py patch          # 0.1.0 -> 0.1.1
    python scripts/bump_version.py minor          # 0.1.1 -> 0.2.0
    python scripts/bump_version.py major          # 0.2.0 -> 1.0.0
    python scripts/bump_version.py 1.2.0-rc.1     # an explicit semantic version

Rewrites only the ``version = "..."`` line of the ``[project]`` table (the rest of the file
is left byte for byte), prints the new version on the first line, then the git commands
that commit and tag it. It never runs git itself. The new version must be a valid
semantic version (https://semver.org) greater than the current one.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path
from typing import NamedTuple

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
PARTS = ("major", "minor", "patch")

# The official semver.org regular expression.
SEMVER = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

# The version line inside [project]: from the table header up to the next table header.
PROJECT_VERSION = re.compile(
    r'(?P<head>^\[project\][ \t]*\n(?:(?!^\[).*\n)*?^version[ \t]*=[ \t]*)"(?P<version>[^"\n]*)"',
    re.MULTILINE,
)


class VersionError(ValueError):
    """An invalid version, bump or pyproject file."""


class Version(NamedTuple):
    major: int
    minor: int
    patch: int
    pre: str = ""
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        match = SEMVER.match(text)
        if not match:
            raise VersionError(f"not a semantic version (X.Y.Z[-pre][+build]): {text!r}")
        return cls(
            int(match["major"]),
            int(match["minor"]),
            int(match["patch"]),
            match["pre"] or "",
            match["build"] or "",
        )

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += f"-{self.pre}"
        if self.build:
            text += f"+{self.build}"
        return text

    def precedence(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        """Sort key of semver precedence: build metadata is ignored, a pre-release
        comes before its release, numeric identifiers sort below alphanumeric ones."""
        if not self.pre:
            return (self.major, self.minor, self.patch, 1, ())
        ids = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.pre.split(".")
        )
        return (self.major, self.minor, self.patch, 0, ids)

    def bump(self, part: str) -> Version:
        """The next release: a pre-release of X.Y.Z bumps to X.Y.Z itself on ``patch``
        (and to X.Y.0 / X.0.0 when those are already the released parts)."""
        if part == "major":
            if self.pre and self.minor == 0 and self.patch == 0:
                return Version(self.major, 0, 0)
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            if self.pre and self.patch == 0:
                return Version(self.major, self.minor, 0)
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            if self.pre:
                return Version(self.major, self.minor, self.patch)
            return Version(self.major, self.minor, self.patch + 1)
        raise VersionError(f"unknown part {part!r}; expected one of {', '.join(PARTS)}")


def read_version(text: str) -> str:
    """The ``[project]`` version of a pyproject.toml text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VersionError(f"pyproject.toml is not valid TOML: {exc}") from exc
    version = data.get("project", {}).get("version")
    if not isinstance(version, str):
        raise VersionError("pyproject.toml has no [project] version string")
    return version


def replace_version(text: str, new: str) -> str:
    """``text`` with the ``[project]`` version line set to ``new``, nothing else changed."""
    result, count = PROJECT_VERSION.subn(lambda m: f'{m["head"]}"{new}"', text, count=1)
    if count != 1:
        raise VersionError('no `version = "..."` line found in the [project] table')
    if read_version(result) != new:
        raise VersionError("could not rewrite the [project] version")
    return result


def next_version(current: str, target: str) -> Version:
    old = Version.parse(current)
    new = old.bump(target) if target in PARTS else Version.parse(target)
    if new.precedence() <= old.precedence():
        raise VersionError(f"new version {new} is not greater than the current {old}")
    return new


def bump_file(path: Path, target: str) -> tuple[str, str]:
    """Bump the version in ``path``; return (old, new)."""
    text = path.read_text(encoding="utf-8")
    current = read_version(text)
    new = str(next_version(current, target))
    path.write_text(replace_version(text, new), encoding="utf-8")
    return current, new


def git_commands(version: str, path: str = "pyproject.toml") -> list[str]:
    tag = f"v{version}"
    return [
        f"git add {path}",
        f'git commit -m "Release {tag}"',
        f'git tag -a {tag} -m "{tag}"',
        f"git push origin HEAD {tag}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Bump the version in pyproject.toml (does not run git)."
    )
    parser.add_argument(
        "target", help="major, minor, patch, or an explicit version X.Y.Z[-pre][+build]"
    )
    parser.add_argument(
        "--file", type=Path, default=PYPROJECT, help="pyproject.toml to edit (default: %(default)s)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the new version, change nothing"
    )
    args = parser.parse_args(argv)

    try:
        if args.dry_run:
            current = read_version(args.file.read_text(encoding="utf-8"))
            new = str(next_version(current, args.target))
        else:
            current, new = bump_file(args.file, args.target)
    except (OSError, VersionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print(new)
    print(f"# {current} -> {new}{' (dry run, nothing written)' if args.dry_run else ''}")
    print("# to release, review the change, then:")
    for command in git_commands(new):
        print(f"  {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
