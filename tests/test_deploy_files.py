"""Static checks of the deployment files: Dockerfile, .dockerignore, docker-compose.yml,
config/gunicorn.conf.py and .env.example. No Docker engine and no network are needed.

The Compose file is validated against the Compose Specification JSON schema vendored by
check-jsonschema (``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, from
github.com/compose-spec/compose-spec, Apache-2.0); it is never downloaded at test time.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT, _require

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
GUNICORN_CONF = ROOT / "config" / "gunicorn.conf.py"
SETTINGS = ROOT / "pokewatch_site" / "settings.py"
PROJECT_PACKAGES = ["pokewatch_site", "prices", "accounts", "pipelines"]

APP_SERVICES = ["migrate", "web", "worker", "beat"]
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE)
VAR_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


# --- helpers -------------------------------------------------------------------------------


@cache
def compose_schema() -> dict[str, Any]:
    try:
        vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError:  # pragma: no cover - a missing dev dependency
        # Skipped locally, a failure with CI set (as tests/test_workflows.py does).
        _require("check-jsonschema (dev extra) vendors the Compose schema; not installed")
    return json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def compose_validator() -> jsonschema.protocols.Validator:
    schema = compose_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def env_example() -> dict[str, tuple[bool, str]]:
    """NAME -> (active, value) for every ``NAME=`` and ``# NAME=`` line of .env.example."""
    names: dict[str, tuple[bool, str]] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = VAR_LINE.match(line.strip())
        if match:
            names[match.group(2)] = (match.group(1) is None, match.group(3))
    return names


def compose_variables() -> set[str]:
    """Names substituted in docker-compose.yml (``${VAR}``, ``${VAR:-x}``, ``$VAR``), not
    the ``$$`` escapes that reach the container's shell."""
    text = COMPOSE.read_text(encoding="utf-8")
    names = set()
    for match in re.finditer(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)", text):
        if match.group(0) != "$$":
            names.add(match.group(1) or match.group(2))
    return names


ENV_READ = re.compile(
    r"""(?:env_str|env_int|env_bool|env_float|env_list|_int)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|os\.environ\.(?:get|setdefault)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
    r"""|os\.getenv\(\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def env_reads(path: Path) -> set[str]:
    return {
        next(group for group in match.groups() if group)
        for match in ENV_READ.finditer(path.read_text(encoding="utf-8"))
    }


def healthcheck_script(command: str) -> str:
    match = re.search(r'python -c "(.+)"', command)
    assert match, command
    return match.group(1)


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    errors = sorted(compose_validator().iter_errors(compose()), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


@pytest.mark.parametrize(
    ("service", "path", "value"),
    [
        ("web", ["depends_on", "postgres", "condition"], "service_ready"),
        ("beat", ["deploy", "replica"], 1),
        ("redis", ["healthcheck", "intervall"], "10s"),
        ("migrate", ["restart"], ["no"]),
    ],
)
def test_the_compose_schema_is_really_checked(service: str, path: list[str], value: Any) -> None:
    broken = json.loads(json.dumps(compose()))
    node = broken["services"][service]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = list(compose_validator().iter_errors(broken))
    assert errors
    assert all(e.json_path.startswith(f"$.services.{service}") for e in errors)


def test_compose_has_every_service_with_the_documented_roles() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "mlflow", *APP_SERVICES}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["mlflow"]["image"].startswith("ghcr.io/mlflow/mlflow:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    mlflow = " ".join(services["mlflow"]["command"])
    assert "--serve-artifacts" in mlflow
    assert "--artifacts-destination=/mlartifacts" in mlflow

    assert services["web"]["command"][:2] == ["gunicorn", "pokewatch_site.wsgi"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "pokewatch_site", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "pokewatch_site", "beat"]
    migrate = " ".join(services["migrate"]["command"])
    assert "manage.py migrate --noinput" in migrate
    assert "manage.py import_cards" in migrate
    assert services["migrate"]["restart"] == "no"


def test_exactly_one_beat() -> None:
    beat = compose()["services"]["beat"]
    assert beat["deploy"]["replicas"] == 1
    assert all(
        "beat" not in " ".join(map(str, service.get("command", [])))
        for name, service in compose()["services"].items()
        if name != "beat"
    ), "only the beat service may run the beat scheduler (no `worker --beat` elsewhere)"


def test_app_services_wait_for_healthy_services_and_the_migration() -> None:
    services = compose()["services"]
    for name in ["web", "worker", "beat"]:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["worker"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for service in services.values():
        assert set(service.get("depends_on", {})) <= set(services)


def test_app_services_share_the_image_env_file_and_service_urls() -> None:
    services = compose()["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == services["web"]["image"], name
        assert [entry["path"] for entry in service["env_file"]] == [".env"], name
        env = service["environment"]
        assert re.fullmatch(r"postgres://.+@postgres:5432/.+", env["DATABASE_URL"]), name
        assert env["REDIS_URL"] == "redis://redis:6379", name
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        assert env["DEBUG"] == "0", name
    assert "WEB_CONCURRENCY" in services["web"]["environment"]


def test_compose_holds_no_literal_secrets() -> None:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert str(value).startswith("${"), f"{name}.{key} must come from .env"
        url = (service.get("environment") or {}).get("DATABASE_URL", "")
        if url:
            credentials = re.match(r"postgres://(\$\{[^}]+\}):(\$\{[^}]+\})@", url)
            assert credentials, f"{name}: DATABASE_URL must take user and password from .env"
            assert credentials.group(2).startswith("${POSTGRES_PASSWORD:?"), name


def test_every_named_volume_is_declared() -> None:
    declared = set(compose()["volumes"])
    used = {
        volume.split(":", 1)[0]
        for service in compose()["services"].values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == declared


def test_every_compose_variable_is_in_env_example() -> None:
    missing = compose_variables() - set(env_example())
    assert not missing, f"in docker-compose.yml but not in .env.example: {sorted(missing)}"


def test_web_healthcheck_script_compiles() -> None:
    test = compose()["services"]["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "/api/v1/health/" in test[3]
    compile(test[3], "<web healthcheck>", "exec")


# --- .env.example --------------------------------------------------------------------------


def test_every_variable_read_by_settings_is_in_env_example() -> None:
    read = env_reads(SETTINGS)
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "POKEWATCH_VAR_DIR"} <= read
    missing = read - set(env_example())
    assert not missing, f"read by settings.py but not in .env.example: {sorted(missing)}"


def test_every_variable_read_by_the_code_and_gunicorn_is_in_env_example() -> None:
    read = env_reads(GUNICORN_CONF)
    for package in PROJECT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            read |= env_reads(path)
    assert {"PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "FORWARDED_ALLOW_IPS"} <= read
    missing = read - set(env_example())
    assert not missing, f"read by the code but not in .env.example: {sorted(missing)}"


def test_env_example_documents_every_variable_once_and_holds_no_secret() -> None:
    seen: set[str] = set()
    documented = False
    for number, raw in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        match = VAR_LINE.match(line)
        if match:
            name = match.group(2)
            assert name not in seen, f"line {number}: {name} twice"
            seen.add(name)
            assert documented, f"line {number}: {name} has no comment above it"
            if SECRET_NAME.search(name) and match.group(1) is None:
                assert match.group(3) == "", f"line {number}: {name} must be empty"
        elif not line:
            documented = False
        elif line.startswith("#"):
            documented = True
        else:
            pytest.fail(f"line {number} is neither a comment nor NAME=value: {raw!r}")


def test_env_example_values_load_in_production_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POKEWATCH_"))}
    env.update({name: value for name, (active, value) in env_example().items() if active})
    env.update(
        SECRET_KEY="test-only-" + "x" * 40,
        POKEWATCH_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    # As in compose: production refuses several web workers without Redis (settings only
    # read the URL; nothing connects at import).
    env["REDIS_URL"] = "redis://redis:6379"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_with_a_slim_final_stage() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    assert re.fullmatch(r"\S+ AS builder", all_stages[0][0][1], re.IGNORECASE)
    assert all_stages[-1][0][1].split()[0] == "python:3.11-slim"
    final = all_stages[-1]
    assert any(kind == "COPY" and args.startswith("--from=builder") for kind, args in final)


def test_dockerfile_final_stage_runs_as_a_non_root_user() -> None:
    final = stages()[-1]
    users = [args for kind, args in final if kind == "USER"]
    assert users, "the final stage must set USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert users[-1] == "pokewatch"
    kinds = [kind for kind, _ in final]
    assert kinds.index("USER") < kinds.index("CMD")


def test_dockerfile_environment_port_healthcheck_and_command() -> None:
    final = stages()[-1]
    env = " ".join(args for kind, args in final if kind == "ENV")
    for setting in [
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        "POKEWATCH_VAR_DIR=/var/lib/pokewatch",
    ]:
        assert setting in env
    assert ("EXPOSE", "8000") in final
    healthchecks = [args for kind, args in final if kind == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/api/v1/health/" in healthchecks[0]
    assert "urllib" in healthchecks[0]
    compile(healthcheck_script(healthchecks[0]), "<healthcheck>", "exec")
    cmd = [args for kind, args in final if kind == "CMD"]
    assert json.loads(cmd[-1]) == [
        "gunicorn",
        "pokewatch_site.wsgi",
        "-c",
        "config/gunicorn.conf.py",
    ]


def test_dockerfile_collects_static_files_at_build_time() -> None:
    runs = [args for kind, args in stages()[-1] if kind == "RUN"]
    assert any("collectstatic --noinput" in run for run in runs)


def test_dockerfile_fetches_nothing_and_bakes_in_no_secret() -> None:
    instructions = dockerfile_instructions()
    for kind, args in instructions:
        assert kind != "ADD", "use COPY; ADD fetches URLs and unpacks archives"
        assert not re.search(r"\b(curl|wget)\b", args), args
        if kind in {"ENV", "ARG", "LABEL"}:
            assert not SECRET_NAME.search(args), f"{kind} {args}"
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"^\s*ADD\s+https?://", text, re.IGNORECASE | re.MULTILINE)
    # The only secret-like value: the dummy key of the build-time collectstatic, scoped to
    # that one RUN.
    for kind, args in instructions:
        for match in re.finditer(r"SECRET_KEY=(\S+)", args):
            assert kind == "RUN" and "collectstatic" in args
            assert "dummy" in match.group(1)
    assert not re.search(r"(?i)(password|token|api_key)\s*=\s*\S", text)


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", ".git", ".env", "__pycache__", ".pytest_cache"} <= patterns


# --- config/gunicorn.conf.py ---------------------------------------------------------------


def load_gunicorn_conf() -> dict[str, Any]:
    """The settings config/gunicorn.conf.py defines; fails on a name gunicorn does not know
    (a typo would be silently ignored by gunicorn)."""
    from gunicorn.config import Config

    namespace = runpy.run_path(str(GUNICORN_CONF))
    public = {k: v for k, v in namespace.items() if not k.startswith("_")}
    public = {k: v for k, v in public.items() if k not in {"os", "annotations"}}
    unknown = set(public) - set(Config().settings)
    assert not unknown, f"not gunicorn settings: {sorted(unknown)}"
    return public


def test_gunicorn_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in env_reads(GUNICORN_CONF):
        monkeypatch.delenv(name, raising=False)
    conf = load_gunicorn_conf()
    assert conf["bind"] == "0.0.0.0:8000"
    assert conf["workers"] == 4
    assert conf["worker_class"] == "pokewatch_site.gunicorn_worker.BalancedThreadWorker"
    assert conf["threads"] == 2
    assert (conf["timeout"], conf["graceful_timeout"], conf["keepalive"]) == (30, 30, 5)
    assert conf["max_requests"] > 0 and 0 < conf["max_requests_jitter"] < conf["max_requests"]
    assert conf["accesslog"] == "-"
    assert "%({x-request-id}o)s" in conf["access_log_format"]
    assert callable(conf["post_worker_init"])


def test_gunicorn_worker_loads_the_url_conf_and_freezes_the_heap(monkeypatch) -> None:
    import gc

    import django.urls

    loaded = []

    class Resolver:
        @property
        def url_patterns(self) -> list:
            loaded.append(True)
            return []

    monkeypatch.setattr(django.urls, "get_resolver", Resolver)
    try:
        load_gunicorn_conf()["post_worker_init"](object())
        assert loaded == [True]
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_gunicorn_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.2")
    monkeypatch.setenv("GUNICORN_ACCESS_LOG", "")
    conf = load_gunicorn_conf()
    assert conf["accesslog"] is None
    assert conf["bind"] == "0.0.0.0:9001"
    assert (conf["workers"], conf["threads"]) == (3, 4)
    assert conf["forwarded_allow_ips"] == "10.0.0.2"
