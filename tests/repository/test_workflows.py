"""Checks of the CI and release configuration, offline.

Every file under .github/workflows must parse and validate against the GitHub workflow
JSON schema vendored by ``check-jsonschema`` (never downloaded here), and every job must
set ``timeout-minutes``. The workflows must agree with .ci/run and docker-compose.yml
(coverage floor, service versions, checks), and the release tools with each other: the
tags bump-my-version makes are the ones the workflows and git-cliff take, a bump leaves
uv.lock valid, and the changelog lists every commit. .pre-commit-config.yaml is validated
with pre-commit's own config schema (check-jsonschema vendors none for it).

Without check-jsonschema / pre-commit / the release tools installed these tests skip
locally and fail when ``CI`` is set, like the service-marked tests.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
PRE_COMMIT_CONFIG = ROOT / ".pre-commit-config.yaml"
CI_RUN = ROOT / ".ci" / "run"
PYPROJECT = ROOT / "pyproject.toml"


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false, so the `on:` key stays "on"
    (PyYAML's YAML 1.1 rules turn on/off/yes/no into booleans, as GitHub does not)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml12Loader)


def _import_or_require(module: str, package: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        reason = f"{package} is not installed (.venv/bin/pip install {package})"
        if os.environ.get("CI"):
            pytest.fail(f"CI requires {reason}")
        pytest.skip(reason)


def _builtin_schema(name: str) -> dict[str, Any]:
    builtin = _import_or_require("check_jsonschema.builtin_schemas", "check-jsonschema")
    return builtin.get_builtin_schema(name)


def _validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    ]


def _workflow(name: str) -> dict[str, Any]:
    path = WORKFLOWS / name
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    return load_yaml(path)


def _run_lines(workflow: dict[str, Any]) -> list[str]:
    return [
        step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
    ]


def _tool(name: str, package: str) -> str:
    """A console script of the dev extra, from this interpreter's environment first."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        reason = f"{package} is not installed (.venv/bin/pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(f"CI requires {reason}")
        pytest.skip(reason)
    return found


def _pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def _dev_requirement(name: str) -> str:
    """The dev extra's requirement for ``name``, e.g. ``git-cliff>=2.14,<3``."""
    for requirement in _pyproject()["project"]["optional-dependencies"]["dev"]:
        if re.match(rf"{re.escape(name)}\b(?![-\w])", requirement):
            return requirement
    raise AssertionError(f"{name} is not in the dev extra")


def _git_env() -> dict[str, str]:
    """An identity, and none of this machine's git configuration (signing, hooks, ...), for
    git and for the tools that run it (a CI runner has no identity of its own)."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.org",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def _git(cwd: Path, *args: str, date: str | None = None) -> str:
    env = _git_env()
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_there_are_workflows() -> None:
    names = {path.name for path in WORKFLOW_FILES}
    assert {"tests.yml", "quality.yml", "image.yml", "release.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_matches_github_schema(path: Path) -> None:
    schema = _builtin_schema("vendor.github-workflows")
    workflow = load_yaml(path)

    assert isinstance(workflow, dict) and "on" in workflow and "jobs" in workflow
    assert _validate(workflow, schema) == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_job_has_a_timeout(path: Path) -> None:
    schema = _builtin_schema("custom.github-workflows-require-timeout")

    assert _validate(load_yaml(path), schema) == []


def test_tests_workflow_and_ci_run_enforce_the_same_coverage_floor() -> None:
    runs = _run_lines(_workflow("tests.yml"))
    pytest_runs = [
        shlex.split(line)
        for run in runs
        for line in run.splitlines()
        if line.strip().startswith(("pytest", "python -m pytest"))
    ]
    assert pytest_runs, "the tests workflow runs no pytest"
    floors = set(re.findall(r"--cov-fail-under=(\d+)", CI_RUN.read_text(encoding="utf-8")))
    assert len(floors) == 1, f".ci/run must set one coverage floor, found {floors}"
    floor = floors.pop()
    for argv in pytest_runs:
        assert f"--cov-fail-under={floor}" in argv, argv
        # The artifact the workflow uploads is the report pytest writes.
        assert "--cov" in argv and "--cov-report=xml" in argv, argv


def test_tests_workflow_runs_on_the_services_production_runs() -> None:
    """The suite runs on the PostgreSQL and Redis of docker-compose.yml, with health checks,
    and with CI=true so that a missing service fails instead of skipping."""
    (job,) = _workflow("tests.yml")["jobs"].values()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    for name in ["postgres", "redis"]:
        service = job["services"][name]
        assert service["image"] == compose["services"][name]["image"], name
        assert "--health-cmd" in service.get("options", ""), name
    env = job["env"]
    published = {
        port.split(":")[0] for service in job["services"].values() for port in service["ports"]
    }
    for variable in ["DATABASE_URL", "REDIS_URL"]:
        port = re.search(r":(\d+)(?:/|$)", env[variable])
        assert port and port.group(1) in published, f"{variable} reaches no service"
    assert str(env["CI"]).lower() == "true"
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "coverage.xml"


def test_quality_workflow_runs_every_check() -> None:
    runs = "\n".join(_run_lines(_workflow("quality.yml")))

    for command in (
        "ruff check",
        "ruff format --check",
        "mypy .",
        "bandit -c pyproject.toml -r pokewatch_site prices accounts pipelines",
        "manage.py makemigrations --check --dry-run",
        "uv lock --check --offline",
        "diff -u requirements.lock -",
        "hadolint Dockerfile",
    ):
        assert command in runs, command
    assert "DATABASE_URL" not in runs


def test_image_workflow_logs_in_exactly_when_it_pushes() -> None:
    (job,) = _workflow("image.yml")["jobs"].values()
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push"))
    login = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/login-action"))

    assert build["with"]["push"] == login["if"]
    assert "github.event_name != 'pull_request'" in login["if"], "pull requests never push"


def test_release_workflow_makes_the_changelog_with_the_dev_extras_git_cliff() -> None:
    (job,) = _workflow("release.yml")["jobs"].values()
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    runs = "\n".join(_run_lines(_workflow("release.yml")))

    assert checkout["with"]["fetch-depth"] == 0, "the changelog needs every commit and tag"
    assert f'pip install "{_dev_requirement("git-cliff")}"' in runs
    assert "git-cliff --current" in runs
    assert (ROOT / "cliff.toml").is_file()


@pytest.mark.parametrize("version", ["1.4.2", "2.0.0-rc.1"])
def test_the_tags_bump_my_version_makes_start_a_release_and_an_image(version: str) -> None:
    config = _pyproject()["tool"]["bumpversion"]
    assert re.fullmatch(config["parse"], version, re.VERBOSE), version
    tag = config["tag_name"].format(new_version=version)
    for name in ["release.yml", "image.yml"]:
        globs = _workflow(name)["on"]["push"]["tags"]
        assert any(fnmatch(tag, glob) for glob in globs), f"{name} ignores {tag}"
    cliff = tomllib.loads((ROOT / "cliff.toml").read_text(encoding="utf-8"))
    assert re.search(cliff["git"]["tag_pattern"], tag), f"git-cliff ignores {tag}"


def test_a_version_bump_rewrites_pyproject_and_uv_lock_commits_and_tags(tmp_path: Path) -> None:
    """bump-my-version, for real, on a copy of the project's pyproject.toml and uv.lock: the
    lock still matches afterwards (the check CI runs) and the tag is the release's."""
    bump = _tool("bump-my-version", "bump-my-version")
    uv = _tool("uv", "uv")
    for name in ["pyproject.toml", "uv.lock", "README.md"]:
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "Start")
    old = _pyproject()["project"]["version"]

    result = subprocess.run(
        [bump, "bump", "minor"],
        cwd=tmp_path,
        env=_git_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    new = tomllib.loads((tmp_path / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    assert new != old and re.fullmatch(r"\d+\.\d+\.0", new)
    assert f'name = "pokewatch"\nversion = "{new}"' in (tmp_path / "uv.lock").read_text()
    assert _git(tmp_path, "status", "--porcelain") == ""
    assert _git(tmp_path, "log", "-1", "--format=%s").strip() == f"Release v{new}"
    assert _git(tmp_path, "tag", "--points-at", "HEAD").split() == [f"v{new}"]
    check = subprocess.run(
        [uv, "lock", "--check", "--offline"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr


def test_release_notes_list_each_commit_of_the_tag_once_grouped(tmp_path: Path) -> None:
    """git-cliff with the repository's cliff.toml on a small history of plain-sentence
    commits: each tag's notes are the commits since the previous tag, every one of them."""
    cliff = _tool("git-cliff", "git-cliff")
    (tmp_path / "cliff.toml").write_bytes((ROOT / "cliff.toml").read_bytes())
    _git(tmp_path, "init", "-q")
    history = {
        "v0.1.0": ["Project skeleton", "docs: the API", "Lint: unused import"],
        "v0.2.0-rc.1": ["Fair prices in one round trip", "benchmarks: the API at 1k keys"],
        "v0.2.0": ["README: how to release"],
    }
    # A day apart, as real releases are (git-cliff orders tags by their time).
    days = iter(range(1, 30))
    for tag, subjects in history.items():
        for subject in subjects:
            date = f"2026-01-{next(days):02d}T12:00:00+00:00"
            _git(tmp_path, "commit", "-q", "--allow-empty", "-m", subject, date=date)
        _git(tmp_path, "tag", "-a", tag, "-m", tag, date=date)
    date = f"2026-01-{next(days):02d}T12:00:00+00:00"
    _git(tmp_path, "commit", "-q", "--allow-empty", "-m", "After the release", date=date)

    previous = None
    for tag, subjects in history.items():
        _git(tmp_path, "checkout", "-q", tag)
        result = subprocess.run(
            [cliff, "--current"],
            cwd=tmp_path,
            env=_git_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        notes = result.stdout
        assert notes.startswith(f"## {tag} ")
        assert (f"Changes since {previous}." in notes) == (previous is not None)
        listed = [line[2:].rsplit(" (", 1)[0] for line in notes.splitlines() if line[:2] == "- "]
        assert sorted(listed) == sorted(subjects), notes
        previous = tag
    _git(tmp_path, "checkout", "-q", "v0.1.0")
    notes = subprocess.run(
        [cliff, "--current"],
        cwd=tmp_path,
        env=_git_env(),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    sections = re.split(r"^### ", notes, flags=re.MULTILINE)[1:]
    groups = {section.splitlines()[0]: section for section in sections}
    assert list(groups) == ["Changes", "Documentation", "Maintenance"]
    assert "docs: the API" in groups["Documentation"]
    assert "Lint: unused import" in groups["Maintenance"]


def test_pre_commit_config_is_valid() -> None:
    config = load_yaml(PRE_COMMIT_CONFIG)
    clientlib = _import_or_require("pre_commit.clientlib", "pre-commit")

    clientlib.load_config(str(PRE_COMMIT_CONFIG))  # raises InvalidConfigError
    hook_ids = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {
        "ruff-check",
        "ruff-format",
        "mypy",
        "bandit",
        "check-yaml",
        "end-of-file-fixer",
        "trailing-whitespace",
        "makemigrations",
    } <= hook_ids
