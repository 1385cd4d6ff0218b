"""Checks of the Kubernetes manifests (deploy/k8s; docs/operations.md, "Kubernetes").

Each overlay (dev, prod) is rendered as ``kubectl apply -k`` would (``kubectl kustomize``,
with the overlay's secret.example.env standing in for the git-ignored secret.env), and the
rendered objects are checked:

- against the Kubernetes API's JSON schemas (kubernetes-validate, strict, offline);
- for the invariants that matter: exactly one beat, replaced and never scaled; every
  container non-root, read-only, without capabilities, with requests and limits, and
  probes on every long-running one; liveness probes that touch no dependency; new pods
  that wait for the migrate Job; a worker grace period that covers a training run; no
  Secret with a value; the metrics token wired to web, workers and their scrapes;
  PostgreSQL and Redis reachable only from PokeWatch's processes; settings that the code
  reads and that .env.example lists; the worker autoscalers on the queues they consume.

NetworkPolicies, the ``$(VAR)`` expansion of the kubelet and the relabelling of the scrape
job are evaluated here, on the rendered objects, by small models of the rules Kubernetes
and Prometheus apply. checkov runs in ``deploy/k8s/validate`` (.ci/run), not here: it
lives in a tools environment of its own. Without kubectl the tests skip locally and fail
with ``CI`` set, like the service-marked tests.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import promql_parser
import pytest
import yaml
from django.conf import settings
from django.http.request import validate_host
from django.test import RequestFactory
from django.urls import resolve
from pytest_httpserver import HTTPServer

from accounts.ratelimit import is_local_probe
from tests.support import ROOT, require_service

K8S = ROOT / "deploy" / "k8s"
VALIDATE = K8S / "validate"
OVERLAYS = ["dev", "prod"]
NAMESPACE = "pokewatch"
SCRAPE_CONFIG = K8S / "monitoring" / "prometheus-scrape.yml"
ADAPTER_VALUES = K8S / "monitoring" / "prometheus-adapter-values.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE = ROOT / "docker-compose.yml"
GUNICORN_CONF = ROOT / "config" / "gunicorn.conf.py"
ALERTS = ROOT / "config" / "prometheus" / "alerts.yml"
PROJECT_CODE = ["pokewatch_site", "prices", "accounts", "pipelines"]

# PokeWatch's own processes (the image of the Dockerfile), by their component label.
APP_COMPONENTS = {"web", "worker", "beat", "migrate"}
APP_NAME = "pokewatch"
RUN_AS = 10001  # the Dockerfile's USER
QUEUE_METRIC = "pokewatch_celery_queue_length"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE)
VAR_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
# Variables set only to be expanded into a later one ($(POD_IP) in ALLOWED_HOSTS): no code
# reads them, so .env.example does not list them.
EXPANSION_HELPERS = {"POD_IP"}
# The checkov checks skipped inline, each with its reason on the object (docs/operations.md,
# "Kubernetes"): a new one must be argued there and added here.
ALLOWED_CHECKOV_SKIPS = {"CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_43"}
DEPENDENCY_PATHS = ("/api/",)  # views that ask the database, the cache or the broker

Obj = dict[str, Any]


# --- rendering -----------------------------------------------------------------------------


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        require_service("kubectl (its built-in Kustomize renders deploy/k8s) is not installed")
    assert found
    return found


def _copy_tree(destination: Path) -> Path:
    """deploy/k8s without any real secret.env, each overlay given its template instead."""
    tree = destination / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("secret.env"))
    for overlay in OVERLAYS:
        folder = tree / "overlays" / overlay
        shutil.copy(folder / "secret.example.env", folder / "secret.env")
    return tree


def _kustomize(kubectl: str, folder: Path) -> list[Obj]:
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Obj]]:
    kubectl = _kubectl()
    tree = _copy_tree(tmp_path_factory.mktemp("k8s"))
    return {overlay: _kustomize(kubectl, tree / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(overlay: str, renders: dict[str, list[Obj]]) -> list[Obj]:
    return renders[overlay]


# --- reading the rendered objects ----------------------------------------------------------


def of_kind(objects: list[Obj], *kinds: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] in kinds]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def workloads(objects: list[Obj]) -> list[Obj]:
    return of_kind(objects, "Deployment", "StatefulSet", "Job")


def pod_labels(workload: Obj) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"].get("labels") or {})


def pod_spec(workload: Obj) -> Obj:
    return dict(workload["spec"]["template"]["spec"])


def component(workload: Obj) -> str:
    return pod_labels(workload).get("app.kubernetes.io/component", "")


def is_app(workload: Obj) -> bool:
    return pod_labels(workload).get("app.kubernetes.io/name") == APP_NAME


def app_workloads(objects: list[Obj], *components: str) -> list[Obj]:
    return [
        w
        for w in workloads(objects)
        if is_app(w) and (not components or component(w) in components)
    ]


def the_app_workload(objects: list[Obj], kind: str, name: str) -> Obj:
    workload = named(objects, kind, name)
    assert is_app(workload), f"{kind}/{name} is not labelled as PokeWatch's"
    return workload


def containers(workload: Obj, init: bool = True) -> list[Obj]:
    spec = pod_spec(workload)
    return [*(spec.get("initContainers") or [] if init else []), *spec["containers"]]


def main_container(workload: Obj) -> Obj:
    (container,) = pod_spec(workload)["containers"]
    return dict(container)


def settings_configmap(objects: list[Obj]) -> dict[str, str]:
    (configmap,) = [
        obj
        for obj in of_kind(objects, "ConfigMap")
        if obj["metadata"]["name"].startswith("pokewatch-settings")
    ]
    return dict(configmap.get("data") or {})


def the_secret(objects: list[Obj]) -> Obj:
    (secret,) = of_kind(objects, "Secret")
    return secret


def secret_values(secret: Obj) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    return values


def env_entries(container: Obj) -> list[Obj]:
    return list(container.get("env") or [])


def env_entry(container: Obj, name: str) -> Obj:
    found = [entry for entry in env_entries(container) if entry["name"] == name]
    assert len(found) == 1, f"{container['name']}: {name} set {len(found)} times"
    return found[0]


def env_file(path: Path) -> dict[str, tuple[bool, str]]:
    """NAME -> (active, value) for every ``NAME=`` and ``# NAME=`` line of an env file."""
    names: dict[str, tuple[bool, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = VAR_LINE.match(line.strip())
        if match:
            names[match.group(2)] = (match.group(1) is None, match.group(3))
    return names


def active_keys(path: Path) -> dict[str, str]:
    return {name: value for name, (active, value) in env_file(path).items() if active}


EXPANSION = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, variables: dict[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion: known names replaced, ``$$`` an escaped ``$``,
    unknown references left as they are."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return variables.get(match.group(1), match.group(0))

    return EXPANSION.sub(one, text)


def environment(container: Obj, objects: list[Obj], pod_ip: str = "10.1.2.3") -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then each env
    entry in order, its value expanded with the variables defined before it."""
    configmaps = {
        obj["metadata"]["name"]: obj.get("data") or {} for obj in of_kind(objects, "ConfigMap")
    }
    secrets = {obj["metadata"]["name"]: secret_values(obj) for obj in of_kind(objects, "Secret")}
    variables: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            variables.update(configmaps[source["configMapRef"]["name"]])
        else:
            variables.update(secrets[source["secretRef"]["name"]])
    for entry in env_entries(container):
        if "value" in entry:
            variables[entry["name"]] = expand(str(entry["value"]), variables)
            continue
        source = entry["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            variables[entry["name"]] = secrets[ref["name"]][ref["key"]]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            variables[entry["name"]] = configmaps[ref["name"]][ref["key"]]
        elif source.get("fieldRef", {}).get("fieldPath") == "status.podIP":
            variables[entry["name"]] = pod_ip
        else:
            raise AssertionError(f"{container['name']}.{entry['name']}: unmodelled {source}")
    return variables


def command_line(container: Obj, objects: list[Obj]) -> list[str]:
    env = environment(container, objects)
    return [
        expand(part, env) for part in [*container.get("command", []), *container.get("args", [])]
    ]


def container_port(container: Obj, port: int | str) -> int:
    """A probe's or a Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        assert port in {p["containerPort"] for p in container.get("ports", [])}, port
        return port
    (number,) = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    return int(number)


def effective_security(workload: Obj, container: Obj) -> dict[str, Any]:
    """A container's security settings, the pod's where the container sets none."""
    pod = pod_spec(workload).get("securityContext") or {}
    own = container.get("securityContext") or {}
    return {**{k: v for k, v in pod.items() if k != "fsGroup"}, **own}


def selects(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) on ``labels``."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G)?$")
FACTORS = {
    None: 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int) -> float:
    match = QUANTITY.match(str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match.group(1)) * FACTORS[match.group(2)]


# --- the overlays validate -----------------------------------------------------------------


def _schema_version() -> str:
    match = re.search(
        r"K8S_VERSION=\$\{K8S_VERSION:-([\d.]+)\}", VALIDATE.read_text(encoding="utf-8")
    )
    assert match, "deploy/k8s/validate names no default K8S_VERSION"
    return match.group(1)


def test_every_object_matches_the_kubernetes_api_schema(objects: list[Obj]) -> None:
    version = _schema_version()
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    assert errors == []


@pytest.mark.parametrize(
    "path, value",
    [
        (["spec", "template", "spec", "automountServiceAccountTokn"], False),  # a typo
        (["spec", "replicas"], "1"),  # a string
    ],
)
def test_the_schema_check_is_real(
    renders: dict[str, list[Obj]], path: list[str], value: Any
) -> None:
    beat = yaml.safe_load(yaml.safe_dump(named(renders["prod"], "Deployment", "beat")))
    target = beat
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(beat, _schema_version(), strict=True)


def test_every_overlay_runs_the_processes_of_the_compose_file(
    overlay: str, objects: list[Obj]
) -> None:
    the_app_workload(objects, "Deployment", "web")
    the_app_workload(objects, "Deployment", "worker")
    the_app_workload(objects, "Deployment", "beat")
    the_app_workload(objects, "Job", "migrate")
    assert {component(w) for w in app_workloads(objects)} == APP_COMPONENTS
    assert {obj["metadata"].get("namespace") for obj in objects if obj["kind"] != "Namespace"} == {
        NAMESPACE
    }
    in_cluster = {obj["metadata"]["name"] for obj in of_kind(objects, "StatefulSet")}
    if overlay == "dev":
        assert in_cluster == {"postgres", "redis"}
        named(objects, "Deployment", "mlflow")
    else:
        # Production's PostgreSQL and Redis are managed ones, reached by the Secret's URLs.
        assert in_cluster == set()
        the_app_workload(objects, "Deployment", "worker-shards")


# --- beat ----------------------------------------------------------------------------------


def test_beat_is_exactly_one_and_replaced_not_rolled(objects: list[Obj]) -> None:
    """Two beats would send every scheduled task twice."""
    beats = app_workloads(objects, "beat")
    assert [w["metadata"]["name"] for w in beats] == ["beat"]
    (beat,) = beats
    assert beat["kind"] == "Deployment"
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert "beat" in main_container(beat)["command"]
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] != "beat"
    # No other container runs a beat (celery worker --beat would be a second one).
    for workload in workloads(objects):
        for container in containers(workload):
            argv = [*container.get("command", []), *container.get("args", [])]
            if workload is not beat:
                assert "beat" not in argv and "--beat" not in argv and "-B" not in argv


# --- every container -----------------------------------------------------------------------


def test_every_pod_runs_unprivileged_without_the_api_token(objects: list[Obj]) -> None:
    for workload in workloads(objects):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec.get("serviceAccountName") == "pokewatch", name
        assert spec.get("enableServiceLinks") is False, name
        for key in ["hostNetwork", "hostPID", "hostIPC"]:
            assert not spec.get(key), f"{name}: {key}"
        for container in containers(workload):
            where = f"{name}/{container['name']}"
            security = effective_security(workload, container)
            assert security.get("runAsNonRoot") is True, where
            assert security.get("runAsUser", 0) >= 10000, where
            if is_app(workload):
                assert security["runAsUser"] == RUN_AS, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert not security.get("privileged"), where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not security.get("capabilities", {}).get("add"), where
            assert security.get("seccompProfile") == {"type": "RuntimeDefault"}, where


def test_the_namespace_enforces_the_restricted_pod_security_standard(objects: list[Obj]) -> None:
    (namespace,) = of_kind(objects, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    (account,) = of_kind(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def test_every_container_has_requests_and_limits(objects: list[Obj]) -> None:
    for workload in workloads(objects):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            resources = container.get("resources") or {}
            for resource in ["cpu", "memory"]:
                request = resources.get("requests", {}).get(resource)
                limit = resources.get("limits", {}).get(resource)
                assert request and limit, f"{where}: {resource} request and limit"
                assert quantity(request) <= quantity(limit), f"{where}: {resource}"


def test_every_long_running_container_has_readiness_and_liveness_probes(objects: list[Obj]) -> None:
    for workload in of_kind(objects, "Deployment", "StatefulSet"):
        for container in containers(workload, init=False):
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert container.get("readinessProbe"), f"{where}: readiness probe"
            assert container.get("livenessProbe"), f"{where}: liveness probe"


def test_liveness_probes_touch_no_dependency(objects: list[Obj]) -> None:
    """A database, cache or broker outage must make pods unready, never restart them: the
    app's liveness (and startup) probes are TCP checks of the process's own port."""
    for workload in app_workloads(objects):
        for container in containers(workload, init=False):
            where = f"{workload['metadata']['name']}/{container['name']}"
            for kind in ["livenessProbe", "startupProbe"]:
                probe = container.get(kind)
                if probe is None:
                    continue
                if "httpGet" in probe:
                    path = probe["httpGet"].get("path", "/")
                    assert not path.startswith(DEPENDENCY_PATHS), f"{where}: {kind} asks {path}"
                if "tcpSocket" in probe:
                    container_port(container, probe["tcpSocket"]["port"])
                if "exec" in probe:
                    # beat's: the age of its schedule file, nothing over the network.
                    script = " ".join(probe["exec"]["command"])
                    assert "celerybeat-schedule" in script and "inspect" not in script, where


def _probe_literals(script: str) -> list[str]:
    compile(script, "<probe>", "exec")
    return [a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", script)]


def test_web_is_ready_when_its_health_check_answers(objects: list[Obj]) -> None:
    """Readiness asks /api/v1/health/ from inside the pod, over loopback: a local probe,
    which the health view does not count against the per-IP rate limit (kubelet's HTTP
    probes all come from the node's address), with a Host that ALLOWED_HOSTS accepts."""
    web = main_container(the_app_workload(objects, "Deployment", "web"))
    command = web["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    literals = _probe_literals(command[2])
    (url,) = [text for text in literals if text.startswith("http://")]
    assert url == "http://127.0.0.1:"
    (path,) = [text for text in literals if text.startswith("/api/")]
    assert resolve(path).url_name == "health"
    host = literals[literals.index("Host") + 1]
    env = environment(web, objects)
    assert validate_host(host, env["ALLOWED_HOSTS"].split(","))
    request = RequestFactory().get(path, HTTP_HOST=host, REMOTE_ADDR="127.0.0.1")
    assert is_local_probe(request)
    assert str(container_port(web, "http")) == env["PORT"], "gunicorn listens on PORT"
    assert "tcpSocket" in web["livenessProbe"] and "tcpSocket" in web["startupProbe"]


@pytest.mark.parametrize("status, ready", [(200, True), (503, False)])
def test_the_readiness_probe_fails_when_health_answers_503(
    renders: dict[str, list[Obj]], httpserver: HTTPServer, status: int, ready: bool
) -> None:
    """The probe's script, run for real against a stand-in for gunicorn on PORT."""
    web = main_container(the_app_workload(renders["prod"], "Deployment", "web"))
    command = web["readinessProbe"]["exec"]["command"]
    httpserver.expect_request("/api/v1/health/", headers={"Host": "localhost"}).respond_with_json(
        {"status": "ok" if ready else "error"}, status=status
    )
    result = subprocess.run(
        [sys.executable, *command[1:]],
        env={"PORT": str(httpserver.port), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        timeout=30,
    )
    assert (result.returncode == 0) == ready, result.stderr
    httpserver.check_assertions()


def test_web_pods_accept_the_host_of_probes_and_scrapes(objects: list[Obj]) -> None:
    """Prometheus's scrapes (and any HTTP probe) send ``Host: <pod IP>:<port>``: the pod's
    IP is added to the ConfigMap's ALLOWED_HOSTS, which still holds the public host."""
    web = main_container(the_app_workload(objects, "Deployment", "web"))
    names = [entry["name"] for entry in env_entries(web)]
    assert names.index("POD_IP") < names.index("ALLOWED_HOSTS"), "POD_IP must come first"
    assert env_entry(web, "POD_IP")["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    allowed = environment(web, objects, pod_ip="10.42.0.7")["ALLOWED_HOSTS"].split(",")
    assert validate_host("10.42.0.7", allowed)
    assert not validate_host("10.42.0.8", allowed)
    for host in settings_configmap(objects)["ALLOWED_HOSTS"].split(","):
        assert validate_host(host, allowed), host


def test_web_writes_only_to_its_temporary_volumes(objects: list[Obj]) -> None:
    """Read-only root: gunicorn's heartbeat files go to /dev/shm (worker_tmp_dir), the
    multiprocess metrics to /tmp; the image's /var/lib/pokewatch, with the static files
    WhiteNoise serves, is not covered by a volume."""
    workload = the_app_workload(objects, "Deployment", "web")
    web = main_container(workload)
    mounts = {m["mountPath"]: m["name"] for m in web["volumeMounts"]}
    worker_tmp_dir = re.search(
        r'^worker_tmp_dir = "([^"]+)"', GUNICORN_CONF.read_text(encoding="utf-8"), re.MULTILINE
    )
    assert worker_tmp_dir and worker_tmp_dir.group(1) in mounts
    assert "/tmp" in mounts
    assert settings_configmap(objects)["POKEWATCH_VAR_DIR"] not in mounts
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    assert volumes[mounts[worker_tmp_dir.group(1)]]["emptyDir"]["medium"] == "Memory"


def test_workers_and_beat_write_their_state_to_volumes(objects: list[Obj]) -> None:
    var_dir = settings_configmap(objects)["POKEWATCH_VAR_DIR"]
    for workload in app_workloads(objects, "worker", "beat"):
        mounts = {m["mountPath"] for m in main_container(workload)["volumeMounts"]}
        assert {var_dir, "/tmp"} <= mounts, workload["metadata"]["name"]
    beat = the_app_workload(objects, "Deployment", "beat")
    schedule = [a for a in main_container(beat)["command"] if a.startswith("--schedule=")]
    assert schedule and schedule[0].removeprefix("--schedule=").startswith(var_dir + "/")
    (volume,) = [v for v in pod_spec(beat)["volumes"] if v["name"] == "var"]
    claim = named(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


# --- migrations ----------------------------------------------------------------------------


def test_new_pods_wait_for_the_migrate_job(objects: list[Obj]) -> None:
    """No pod takes traffic or tasks before the release's migrations are applied: each
    waits in an init container until ``migrate --check`` passes."""
    migrate = the_app_workload(objects, "Job", "migrate")
    job = main_container(migrate)
    script = " ".join(job["command"])
    assert "manage.py migrate --noinput" in script and "import_cards" in script
    assert pod_spec(migrate)["restartPolicy"] in {"OnFailure", "Never"}
    assert migrate["spec"]["backoffLimit"] >= 1
    for workload in app_workloads(objects, "web", "worker", "beat"):
        name = workload["metadata"]["name"]
        inits = pod_spec(workload).get("initContainers") or []
        waits = [c for c in inits if "manage.py migrate --check" in " ".join(c["command"])]
        assert len(waits) == 1, f"{name} does not wait for the migrations"
        (wait,) = waits
        assert re.search(
            r"until .*manage\.py migrate --check.*; do .*sleep \d+; done", wait["command"][-1]
        )
        assert wait["image"] == main_container(workload)["image"] == job["image"], name
        # The same database, by the same settings, as the process it guards.
        for variable in ["DATABASE_URL", "SECRET_KEY"]:
            assert env_entry(wait, variable) == env_entry(main_container(workload), variable), name
        assert wait["envFrom"] == main_container(workload)["envFrom"], name


# --- the worker ----------------------------------------------------------------------------


def test_worker_grace_period_covers_a_training_run(objects: list[Obj]) -> None:
    """A rollout, a scale-down or a node drain waits for a running training run (Celery's
    warm shutdown on SIGTERM) instead of killing it."""
    hard_margin = settings.POKEWATCH_TRAINING_HARD_LIMIT - settings.POKEWATCH_TRAINING_SOFT_LIMIT
    soft = int(settings_configmap(objects).get("POKEWATCH_TRAINING_SOFT_LIMIT", 3600))
    for workload in app_workloads(objects, "worker"):
        grace = pod_spec(workload)["terminationGracePeriodSeconds"]
        assert grace >= soft + hard_margin, workload["metadata"]["name"]


def test_worker_and_beat_commands_are_the_compose_files(objects: list[Obj]) -> None:
    """docker-compose.yml's commands, with Kubernetes' $(VAR) for compose's ${VAR:-default}."""
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]

    def normal(argv: list[str]) -> list[str]:
        return [re.sub(r"\$\{(\w+)(?::-[^}]*)?\}|\$\((\w+)\)", r"<\1\2>", part) for part in argv]

    for name in ["web", "worker", "beat"]:
        container = main_container(the_app_workload(objects, "Deployment", name))
        assert normal(container["command"]) == normal(compose[name]["command"]), name
    worker = main_container(the_app_workload(objects, "Deployment", "worker"))
    for variable in ["POKEWATCH_WORKER_METRICS_PORT", "POKEWATCH_WORKER_METRICS_ADDR"]:
        assert env_entry(worker, variable)["value"] == compose["worker"]["environment"][variable]


def test_every_variable_reference_is_defined_before_it(objects: list[Obj]) -> None:
    """$(VAR) in a command or an env value names a variable the container has by then
    (the kubelet leaves an unknown one as it is: --concurrency=$(X) would reach Celery)."""
    for workload in workloads(objects):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            env = environment(container, objects)
            for value in [*command_line(container, objects), *env.values()]:
                assert not EXPANSION.search(value.replace("$$", "")), f"{where}: {value}"


# --- secrets -------------------------------------------------------------------------------


def test_no_secret_carries_a_value(objects: list[Obj]) -> None:
    for secret in of_kind(objects, "Secret"):
        assert set(secret_values(secret).values()) <= {""}, secret["metadata"]["name"]
    for path in K8S.rglob("secret.example.env"):
        assert set(active_keys(path).values()) == {""}, path
    for key in settings_configmap(objects):
        assert not SECRET_NAME.search(key), f"{key} belongs in the Secret"
    for workload in workloads(objects):
        for container in containers(workload):
            for entry in env_entries(container):
                if SECRET_NAME.search(entry["name"]) and not entry["name"].endswith("_FILE"):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (
                        f"{workload['metadata']['name']}/{container['name']}: {entry['name']}"
                    )


def test_secret_env_files_stay_out_of_git() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/k8s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [path for path in tracked if path.endswith("/secret.env")]
    for overlay in OVERLAYS:
        path = f"deploy/k8s/overlays/{overlay}/secret.env"
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} is not ignored by git"


def test_every_secret_reference_names_a_key_of_the_secret(objects: list[Obj]) -> None:
    secret = the_secret(objects)
    keys = set(secret_values(secret))
    base_keys = set(active_keys(K8S / "base" / "secret.example.env"))
    for overlay in OVERLAYS:
        example = set(active_keys(K8S / "overlays" / overlay / "secret.example.env"))
        assert base_keys <= example, f"overlays/{overlay}/secret.example.env lacks keys"
    for workload in workloads(objects):
        spec = pod_spec(workload)
        refs = [
            entry["valueFrom"]["secretKeyRef"]
            for container in containers(workload)
            for entry in env_entries(container)
            if "secretKeyRef" in entry.get("valueFrom", {})
        ]
        refs += [
            {"name": v["secret"]["secretName"], "key": item["key"]}
            for v in spec.get("volumes") or []
            if "secret" in v
            for item in v["secret"].get("items", [])
        ]
        for ref in refs:
            assert ref["name"] == secret["metadata"]["name"], ref
            assert ref["key"] in keys, ref


def test_make_secret_env_writes_every_key_of_the_dev_template(tmp_path: Path) -> None:
    folder = tmp_path / "dev"
    shutil.copytree(K8S / "overlays" / "dev", folder, ignore=shutil.ignore_patterns("secret.env"))
    script = folder / "make-secret-env"

    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    written = active_keys(folder / "secret.env")
    assert set(written) == set(active_keys(folder / "secret.example.env"))
    assert len(written["SECRET_KEY"]) >= 40
    assert f":{written['POSTGRES_PASSWORD']}@postgres:5432/" in written["DATABASE_URL"]
    assert written["REDIS_URL"].startswith("redis://redis:6379/")
    assert len(written["POKEWATCH_METRICS_TOKEN"]) >= 32
    assert (folder / "secret.env").stat().st_mode & 0o077 == 0, "readable by others"
    again = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and active_keys(folder / "secret.env") == written


# --- metrics -------------------------------------------------------------------------------


def _scraped(workload: Obj) -> tuple[int, str]:
    annotations = workload["spec"]["template"]["metadata"].get("annotations") or {}
    assert annotations.get("prometheus.io/scrape") == "true", workload["metadata"]["name"]
    return int(annotations["prometheus.io/port"]), annotations["prometheus.io/path"]


def test_the_metrics_token_reaches_web_and_workers(objects: list[Obj]) -> None:
    secret = the_secret(objects)["metadata"]["name"]
    for workload in app_workloads(objects, "web", "worker"):
        container = main_container(workload)
        name = workload["metadata"]["name"]
        assert env_entry(container, "POKEWATCH_METRICS_TOKEN")["valueFrom"]["secretKeyRef"] == {
            "name": secret,
            "key": "POKEWATCH_METRICS_TOKEN",
        }, name
        port, path = _scraped(workload)
        assert port in {p["containerPort"] for p in container["ports"]}, name
        if component(workload) == "web":
            assert resolve(path).url_name == "metrics"
        else:
            env = environment(container, objects)
            assert path == "/metrics"
            assert env["POKEWATCH_WORKER_METRICS_PORT"] == str(port), name
            assert env["POKEWATCH_WORKER_METRICS_ADDR"] == "0.0.0.0", name
    # Nothing else is scraped (beat, migrate and the dev databases serve no /metrics).
    for workload in workloads(objects):
        if not (is_app(workload) and component(workload) in {"web", "worker"}):
            annotations = workload["spec"]["template"]["metadata"].get("annotations") or {}
            assert "prometheus.io/scrape" not in annotations, workload["metadata"]["name"]


def _relabel(labels: dict[str, str], configs: list[Obj]) -> dict[str, str] | None:
    """Prometheus's relabelling (keep, drop, replace), enough for the scrape job."""
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        value = config.get("separator", ";").join(
            labels.get(n, "") for n in config.get("source_labels", [])
        )
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            groups = (match.group(0), *match.groups())
            result = re.sub(
                r"\$(\d+)|\$\{(\d+)\}",
                lambda g, groups=groups: groups[int(g.group(1) or g.group(2))] or "",
                config.get("replacement", "$1"),
            )
            if result:
                labels[config["target_label"]] = result
            else:
                labels.pop(config["target_label"], None)
        assert action in {"keep", "drop", "replace"}, action
    return labels


def _sanitized(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _discovered_targets(workload: Obj, ip: str) -> Iterator[dict[str, str]]:
    """What Prometheus's Kubernetes discovery (role: pod) sees of one pod of the workload:
    a target per declared container port, one without a port if there is none."""
    metadata = workload["spec"]["template"]["metadata"]
    base = {
        "__meta_kubernetes_namespace": workload["metadata"]["namespace"],
        "__meta_kubernetes_pod_name": f"{workload['metadata']['name']}-abc12",
        "__meta_kubernetes_pod_ip": ip,
        "__meta_kubernetes_pod_phase": "Running",
        "__metrics_path__": "/metrics",
        "job": "pokewatch",
    }
    for key, value in (metadata.get("labels") or {}).items():
        base[f"__meta_kubernetes_pod_label_{_sanitized(key)}"] = value
    for key, value in (metadata.get("annotations") or {}).items():
        base[f"__meta_kubernetes_pod_annotation_{_sanitized(key)}"] = value
    ports = [p for c in containers(workload, init=False) for p in c.get("ports", [])]
    for port in ports or [None]:
        yield {**base, "__address__": f"{ip}:{port['containerPort']}" if port else ip}


def test_the_scrape_job_scrapes_each_web_and_worker_pod_with_the_token(objects: list[Obj]) -> None:
    (job,) = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))["scrape_configs"]
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]
    (discovery,) = job["kubernetes_sd_configs"]
    assert discovery["role"] == "pod" and discovery["namespaces"]["names"] == [NAMESPACE]
    alert_jobs = set(re.findall(r'job=~"([^"]+)"', ALERTS.read_text(encoding="utf-8")))
    ips = {w["metadata"]["name"]: f"10.1.0.{n}" for n, w in enumerate(workloads(objects), 1)}
    scraped: dict[str, set[str]] = {}
    for workload in workloads(objects):
        name = workload["metadata"]["name"]
        for labels in _discovered_targets(workload, ips[name]):
            target = _relabel(labels, job["relabel_configs"])
            if target is not None:
                address = f"{target['__address__']}{target['__metrics_path__']}"
                scraped.setdefault(name, set()).add(f"{target['job']} {address}")
                assert target["namespace"] == NAMESPACE and target["pod"]
    # One target per web or worker pod, on its annotated port, named as compose's jobs.
    expected = {}
    for workload in app_workloads(objects, "web", "worker"):
        port, path = _scraped(workload)
        name = workload["metadata"]["name"]
        expected[name] = {f"{component(workload)} {ips[name]}:{port}{path}"}
    assert scraped == expected
    for alert_job in alert_jobs:
        assert {"web", "worker"} <= set(alert_job.split("|")), "the alerts' job names"


def test_prometheus_may_reach_the_metrics_ports(objects: list[Obj]) -> None:
    for workload in app_workloads(objects, "web", "worker"):
        port, _ = _scraped(workload)
        peers = [
            peer
            for policy in of_kind(objects, "NetworkPolicy")
            if selects(policy["spec"]["podSelector"], pod_labels(workload))
            for rule in policy["spec"].get("ingress") or []
            if port in {p["port"] for p in rule.get("ports") or []}
            for peer in rule.get("from") or []
        ]
        assert any(
            (peer.get("namespaceSelector") or {})
            .get("matchLabels", {})
            .get("kubernetes.io/metadata.name")
            == "monitoring"
            and peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            == "prometheus"
            for peer in peers
        ), workload["metadata"]["name"]


# --- network policies ----------------------------------------------------------------------


def _allowed_in_namespace(objects: list[Obj], target: Obj, port: int) -> set[str]:
    """The workloads of the namespace whose pods may open ``port`` on the target's pods."""
    policies = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if selects(p["spec"]["podSelector"], pod_labels(target))
    ]
    assert policies, f"{target['metadata']['name']} is selected by no NetworkPolicy"
    allowed = set()
    for source in workloads(objects):
        for policy in policies:
            for rule in policy["spec"].get("ingress") or []:
                ports = {p["port"] for p in rule.get("ports") or []}
                if ports and port not in ports:
                    continue
                peers = rule.get("from")
                if not peers or any(
                    "namespaceSelector" not in peer
                    and "ipBlock" not in peer
                    and selects(peer["podSelector"], pod_labels(source))
                    for peer in peers
                ):
                    allowed.add(source["metadata"]["name"])
    return allowed


def test_every_pod_is_denied_by_default(objects: list[Obj]) -> None:
    deny = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"]
    ]
    assert len(deny) == 1 and not deny[0]["spec"].get("ingress")


def test_postgres_and_redis_admit_only_pokewatchs_processes(
    overlay: str, objects: list[Obj]
) -> None:
    if overlay == "prod":
        # Managed services outside the cluster: nothing of theirs in it; the app reaches
        # them by the Secret's URLs (their firewalls are docs/operations.md's business).
        assert not [w for w in workloads(objects) if not is_app(w)]
        for workload in app_workloads(objects):
            for variable in ["DATABASE_URL", "REDIS_URL"]:
                assert "secretKeyRef" in env_entry(main_container(workload), variable)["valueFrom"]
        return
    app = {w["metadata"]["name"] for w in app_workloads(objects)}
    for name, port in [("postgres", 5432), ("redis", 6379)]:
        target = named(objects, "StatefulSet", name)
        assert _allowed_in_namespace(objects, target, port) == app, name
        for policy in of_kind(objects, "NetworkPolicy"):
            if selects(policy["spec"]["podSelector"], pod_labels(target)):
                for rule in policy["spec"].get("ingress") or []:
                    for peer in rule.get("from") or []:
                        assert set(peer) == {"podSelector"}, f"{name}: only pods of the namespace"
    mlflow = named(objects, "Deployment", "mlflow")
    assert _allowed_in_namespace(objects, mlflow, 5000) == {
        w["metadata"]["name"] for w in app_workloads(objects, "worker")
    }


def test_web_admits_only_the_ingress_controller_and_prometheus(objects: list[Obj]) -> None:
    web = the_app_workload(objects, "Deployment", "web")
    assert _allowed_in_namespace(objects, web, 8000) == set()
    namespaces = set()
    for policy in of_kind(objects, "NetworkPolicy"):
        if selects(policy["spec"]["podSelector"], pod_labels(web)):
            for rule in policy["spec"].get("ingress") or []:
                for peer in rule["from"]:
                    assert "ipBlock" not in peer and peer["podSelector"]["matchLabels"]
                    namespaces.add(
                        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    )
    assert namespaces == {"ingress-nginx", "monitoring"}


# --- settings ------------------------------------------------------------------------------


def _read_by_the_code(name: str) -> bool:
    literal = re.compile(rf"[\"']{re.escape(name)}[\"']")
    paths = [
        GUNICORN_CONF,
        *(p for package in PROJECT_CODE for p in (ROOT / package).rglob("*.py")),
    ]
    return any(literal.search(path.read_text(encoding="utf-8")) for path in paths)


def test_configmap_keys_are_settings_the_code_reads(renders: dict[str, list[Obj]]) -> None:
    documented = set(env_file(ENV_EXAMPLE))
    referenced = {
        name
        for objects in renders.values()
        for workload in app_workloads(objects)
        for container in containers(workload)
        for part in [
            *container.get("command", []),
            *(str(e.get("value", "")) for e in env_entries(container)),
        ]
        for name in re.findall(r"\$\((\w+)\)", part)
    }
    for overlay, objects in renders.items():
        for key in settings_configmap(objects):
            assert key in documented, f"overlays/{overlay}: {key} is not in .env.example"
            assert _read_by_the_code(key) or key in referenced, f"{key}: nothing reads it"


def test_every_variable_of_the_app_containers_is_in_env_example(objects: list[Obj]) -> None:
    documented = set(env_file(ENV_EXAMPLE))
    for workload in app_workloads(objects):
        for container in containers(workload):
            entries = env_entries(container)
            for index, entry in enumerate(entries):
                name = entry["name"]
                if name in EXPANSION_HELPERS:
                    later = " ".join(str(e.get("value", "")) for e in entries[index + 1 :])
                    assert f"$({name})" in later, f"{name} is set but expanded nowhere"
                    continue
                assert name in documented, (
                    f"{workload['metadata']['name']}: {name} not in .env.example"
                )


def test_the_ingress_serves_the_allowed_host_over_tls(objects: list[Obj]) -> None:
    (ingress,) = of_kind(objects, "Ingress")
    config = settings_configmap(objects)
    allowed = config["ALLOWED_HOSTS"].split(",")
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    (tls,) = ingress["spec"]["tls"]
    assert sorted(tls["hosts"]) == sorted(hosts) and tls["secretName"]
    service = named(objects, "Service", "web")
    web = main_container(the_app_workload(objects, "Deployment", "web"))
    for rule in ingress["spec"]["rules"]:
        assert validate_host(rule["host"], allowed), rule["host"]
        assert f"https://{rule['host']}" in config["CSRF_TRUSTED_ORIGINS"].split(",")
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "web"
            (port,) = [p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"]]
            target = container_port(web, port["targetPort"])
            assert str(target) == environment(web, objects)["PORT"]
    web_pods = pod_labels(the_app_workload(objects, "Deployment", "web"))
    assert selects({"matchLabels": service["spec"]["selector"]}, web_pods)


# --- images --------------------------------------------------------------------------------


def test_every_image_is_pinned_and_the_app_runs_one_image(overlay: str, objects: list[Obj]) -> None:
    app_images = set()
    for workload in workloads(objects):
        for container in containers(workload):
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert "@sha256:" in image or (name and tag and "/" not in tag), f"{image} has no tag"
            assert tag != "latest", image
            if is_app(workload):
                app_images.add(image)
                expected = "IfNotPresent" if overlay == "dev" else "Always"
                assert container["imagePullPolicy"] == expected, f"{workload['metadata']['name']}"
    assert len(app_images) == 1, app_images


def test_every_checkov_skip_is_justified(objects: list[Obj]) -> None:
    skipped = set()
    for obj in objects:
        for key, value in (obj["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                assert re.fullmatch(r"checkov\.io/skip\d+", key), key
                match = re.fullmatch(r"(CKV2?_K8S_\d+)=(.{40,})", value)
                assert match, f"{obj['metadata']['name']}: {key} has no reason: {value!r}"
                skipped.add(match.group(1))
    assert skipped <= ALLOWED_CHECKOV_SKIPS, skipped - ALLOWED_CHECKOV_SKIPS


# --- autoscaling ---------------------------------------------------------------------------


def _consumed_queue(worker: Obj, objects: list[Obj]) -> str:
    argv = command_line(main_container(worker), objects)
    if "-Q" in argv:
        return argv[argv.index("-Q") + 1]
    return settings_configmap(objects)["CELERY_TASK_DEFAULT_QUEUE"]


def test_workers_scale_on_the_length_of_the_queue_they_consume(
    overlay: str, objects: list[Obj]
) -> None:
    hpas = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa
        for hpa in of_kind(objects, "HorizontalPodAutoscaler")
    }
    if overlay == "dev":
        assert hpas == {}, "dev runs one of each, with no metrics pipeline"
        return
    exported = (ROOT / "pokewatch_site" / "metrics.py").read_text(encoding="utf-8")
    assert f'"{QUEUE_METRIC}"' in exported
    for worker in app_workloads(objects, "worker"):
        hpa = hpas[worker["metadata"]["name"]]
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": worker["metadata"]["name"],
        }
        (metric,) = hpa["spec"]["metrics"]
        assert metric["type"] == "External"
        assert metric["external"]["metric"]["name"] == QUEUE_METRIC
        selector = metric["external"]["metric"]["selector"]
        assert selector == {"matchLabels": {"queue": _consumed_queue(worker, objects)}}
        assert metric["external"]["target"]["type"] == "AverageValue"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in worker["spec"], "the HPA owns the count"
    web_hpa = hpas["web"]
    (metric,) = web_hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert web_hpa["spec"]["minReplicas"] >= 2, "a drained node must leave a web pod"
    assert "replicas" not in the_app_workload(objects, "Deployment", "web")["spec"]
    assert set(hpas) == {w["metadata"]["name"] for w in app_workloads(objects, "web", "worker")}


def test_the_adapter_rule_serves_the_queue_metric() -> None:
    (rule,) = yaml.safe_load(ADAPTER_VALUES.read_text(encoding="utf-8"))["rules"]["external"]
    assert rule["name"]["as"] == QUEUE_METRIC
    assert re.fullmatch(rule["name"]["matches"], QUEUE_METRIC)
    assert rule["resources"]["overrides"]["namespace"]["resource"] == "namespace"
    series = promql_parser.parse(rule["seriesQuery"])
    assert getattr(series, "name", None) == QUEUE_METRIC
    query = (
        rule["metricsQuery"]
        .replace("<<.Series>>", QUEUE_METRIC)
        .replace("<<.LabelMatchers>>", f'queue="pokewatch",namespace="{NAMESPACE}"')
    )
    parsed = promql_parser.parse(query)
    # Every web pod reports the same queue length: the largest, never the sum.
    assert isinstance(parsed, promql_parser.AggregateExpr)
    assert str(parsed.op) == "max" and parsed.modifier.labels == ["queue"]


def test_disruption_budgets_cover_one_deployment_each(objects: list[Obj]) -> None:
    for budget in of_kind(objects, "PodDisruptionBudget"):
        covered = [
            w["metadata"]["name"]
            for w in workloads(objects)
            if selects(budget["spec"]["selector"], pod_labels(w))
        ]
        assert covered == [budget["metadata"]["name"]], covered
        assert budget["spec"]["maxUnavailable"] == 1
    names = {b["metadata"]["name"] for b in of_kind(objects, "PodDisruptionBudget")}
    assert "web" in names and "beat" not in names


# --- the validation in CI ------------------------------------------------------------------


def test_ci_and_the_quality_workflow_run_the_validation() -> None:
    """.ci/run and the quality workflow both run deploy/k8s/validate, with the checkov of
    deploy/k8s/tools/requirements.txt (every package pinned with its hashes)."""
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    quality = (ROOT / ".github" / "workflows" / "quality.yml").read_text(encoding="utf-8")
    tools = K8S / "tools"
    assert "make --no-print-directory k8s-validate" in ci_run
    target = re.search(r"^k8s-validate:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target and "deploy/k8s/validate" in target.group(1)
    assert "--require-hashes -r $(TOOLS_REQUIREMENTS)" in makefile
    assert "TOOLS_REQUIREMENTS := deploy/k8s/tools/requirements.txt" in makefile
    assert "--require-hashes" in quality and "-r deploy/k8s/tools/requirements.txt" in quality
    assert "deploy/k8s/validate" in quality
    (pin,) = [line for line in (tools / "requirements.in").read_text().splitlines() if "==" in line]
    locked = (tools / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(pin)} \\\n +--hash=sha256:", locked, re.MULTILINE), pin
    requirements = [line for line in locked.splitlines() if re.match(r"^[a-z0-9]", line)]
    assert requirements and all(line.endswith("\\") for line in requirements), "every pin hashed"


def test_the_docs_give_the_commands_and_argue_each_skip() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = operations[operations.index("\n## Kubernetes\n") :]
    for check in ALLOWED_CHECKOV_SKIPS:
        assert f"`{check}`" in section, f"{check} is not argued in docs/operations.md"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for text in [section, readme]:
        # Every file or folder of deploy/k8s they name exists (secret.env: the user makes it).
        for path in re.findall(r"deploy/k8s/[\w./-]*[\w/]", text):
            assert path.endswith("/secret.env") or (ROOT / path).exists(), path
        assert "kubectl apply -k deploy/k8s/overlays/dev" in text
    assert (K8S / "overlays" / "dev" / "make-secret-env").stat().st_mode & 0o111
    assert VALIDATE.stat().st_mode & 0o111
