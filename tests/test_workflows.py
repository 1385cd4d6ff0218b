"""Static checks of the CI configuration, offline.

Every file under .github/workflows must parse and validate against the GitHub workflow
JSON schema vendored by ``check-jsonschema`` (never downloaded here), and every job must
set ``timeout-minutes``. The tests workflow must keep its coverage floor and its
PostgreSQL and Redis services, so neither can quietly disappear. .pre-commit-config.yaml
is validated with pre-commit's own config schema (check-jsonschema vendors none for it).

Without check-jsonschema / pre-commit installed the schema tests skip locally and fail
when ``CI`` is set, like the service-marked tests.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
PRE_COMMIT_CONFIG = ROOT / ".pre-commit-config.yaml"
COVERAGE_FLOOR = 85


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


def test_tests_workflow_enforces_coverage_floor() -> None:
    runs = _run_lines(_workflow("tests.yml"))
    pytest_runs = [
        shlex.split(line)
        for run in runs
        for line in run.splitlines()
        if line.strip().startswith(("pytest", "python -m pytest"))
    ]

    assert pytest_runs, "the tests workflow runs no pytest"
    for argv in pytest_runs:
        assert f"--cov-fail-under={COVERAGE_FLOOR}" in argv, argv
        assert "--cov" in argv and "--cov-report=xml" in argv, argv


def test_tests_workflow_runs_on_postgres_and_redis() -> None:
    workflow = _workflow("tests.yml")
    on = workflow["on"]
    assert "push" in on and "pull_request" in on
    (job,) = workflow["jobs"].values()
    images = {name: service["image"] for name, service in job["services"].items()}

    assert images.get("postgres", "").startswith("postgres:16")
    assert images.get("redis", "").startswith("redis:7")
    for service in job["services"].values():
        assert "--health-cmd" in service.get("options", "")
    env = job["env"]
    assert env["DATABASE_URL"].startswith("postgres://")
    assert env["REDIS_URL"].startswith("redis://")
    # CI=true: a test whose service is missing fails instead of skipping.
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
    ):
        assert command in runs, command
    assert "DATABASE_URL" not in runs


def test_image_workflow_pushes_only_from_main_and_tags() -> None:
    workflow = _workflow("image.yml")
    (job,) = workflow["jobs"].values()
    push = (
        "${{ github.event_name != 'pull_request' && (github.ref == 'refs/heads/main' "
        "|| startsWith(github.ref, 'refs/tags/v')) }}"
    )
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push"))
    login = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/login-action"))

    assert build["with"]["push"] == push
    assert login["if"] == push
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert workflow["on"]["push"] == {"branches": ["main"], "tags": ["v*.*.*"]}


def test_release_workflow_sees_the_whole_history() -> None:
    workflow = _workflow("release.yml")
    (job,) = workflow["jobs"].values()
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))

    assert workflow["on"] == {"push": {"tags": ["v*.*.*"]}}
    assert checkout["with"]["fetch-depth"] == 0
    assert "git log" in "\n".join(_run_lines(workflow))


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
