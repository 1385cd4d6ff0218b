"""Static and tool checks of the monitoring files (docs/operations.md, "Monitoring"):
config/prometheus/ (scrape configuration, alert rules and their unit tests), config/grafana/
(provisioning and the dashboard) and the ``monitoring`` profile of docker-compose.yml.

- Every PromQL expression of the rules and of the dashboard parses (promql-parser), and
  every metric it names is one the project exports: the names come from a real scrape of
  ``/metrics`` through Django's test client, after making the data the state metrics are
  read from.
- promtool (Debian's ``prometheus`` package) checks the rules, runs their unit tests and
  checks the scrape configuration. Without promtool these skip locally and fail with
  ``CI`` set, like the service-marked tests.
- Every alert has a severity, a summary, a description and a runbook that is a heading of
  docs/operations.md, and the unit tests show each one firing and staying quiet.
- The dashboard: unique panel ids, a grid position and the provisioned data source on every
  panel, each application metric of the contract shown; the provider loads the folder the
  JSON is mounted at.
- The monitoring services mount files that exist, take the token from a compose secret and
  scrape the ports the app services listen on.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import promql_parser
import pytest
import yaml
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT, require_service
from tests.support.api import World

PROMETHEUS_DIR = ROOT / "config" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
SCRAPE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
GRAFANA_DIR = ROOT / "config" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "pokewatch.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "pokewatch.yml"
COMPOSE = ROOT / "docker-compose.yml"
OPERATIONS = ROOT / "docs" / "operations.md"

MONITORING = ["prometheus", "grafana"]
TOKEN_SECRET = "metrics_token"
TOKEN_FILE = f"/run/secrets/{TOKEN_SECRET}"
# Series Prometheus makes itself for every target: no exporter has them.
PROMETHEUS_SERIES = {"up"}
# Grafana's interval variables, replaced by a duration before a panel's query is parsed.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1d"}
# What each alert of issue 14 is called.
REQUIRED_ALERTS = {
    "no new prices for 36 h": "PokeWatchNoNewPrices",
    "the freshness metric is absent": "PokeWatchPriceFreshnessUnknown",
    "two failed training runs in a row": "PokeWatchTrainingFailing",
    "a drifted feature": "PokeWatchFeatureDrift",
    "a 5xx rate above 1 %": "PokeWatchHighErrorRate",
    "p99 latency above 250 ms": "PokeWatchHighLatency",
    "the champion older than 3 days": "PokeWatchChampionStale",
    "a Celery queue backing up": "PokeWatchCeleryQueueBacklog",
}
# The application metrics of the contract (DESIGN.md section 5, issue 14), as exposed: the
# dashboard shows every one.
APPLICATION_METRICS = {
    "pokewatch_prediction_cache_hits_total",
    "pokewatch_prediction_cache_misses_total",
    "pokewatch_ratelimit_refusals_total",
    "pokewatch_auth_failures_total",
    "pokewatch_celery_tasks_total",
    "pokewatch_celery_queue_length",
    "pokewatch_training_step_seconds_bucket",
    "pokewatch_training_runs_total",
    "pokewatch_training_consecutive_failures",
    "pokewatch_training_last_run_step_seconds",
    "pokewatch_training_last_run_cards_scored",
    "pokewatch_cards_scored_total",
    "pokewatch_champion_mape",
    "pokewatch_champion_band_coverage",
    "pokewatch_champion_signal_rate",
    "pokewatch_champion_age_seconds",
    "pokewatch_champion_info",
    "pokewatch_signals_published_today",
    "pokewatch_newest_price_age_seconds",
    "pokewatch_drift_psi",
    "pokewatch_drift_ks",
    "pokewatch_drift_drifted",
    "pokewatch_drift_threshold",
    "pokewatch_drift_report_age_seconds",
    "pokewatch_metrics_source_up",
}
# The sample names of a family declared with this type (prometheus-client's exposition).
SAMPLE_SUFFIXES = {
    "counter": ["_total"],
    "histogram": ["_bucket", "_sum", "_count"],
    "summary": ["", "_sum", "_count"],
    "info": ["_info"],
}


# --- helpers -------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@cache
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    panels = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def grafana_expression(expr: str) -> str:
    """A panel's query with Grafana's interval variables replaced (any other ``$`` is left,
    and fails to parse)."""
    for variable, duration in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, duration)
    return expr


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every alert rule and every dashboard query."""
    found = [(f"alert {rule['alert']}", str(rule["expr"])) for rule in alerting_rules()]
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r}", grafana_expression(target["expr"])))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (``name{...}`` or ``{__name__="name"}``)."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    assert matcher.op == promql_parser.MatchOp.Equal, f"{expr}: a name regex"
                    names.add(matcher.value)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def exported_names(page: str) -> set[str]:
    """Every sample name of a Prometheus text page, and those of the families it declares
    without samples yet (a labelled counter no event has touched)."""
    names = set()
    for family in text_string_to_metric_families(page):
        names |= {sample.name for sample in family.samples}
        names |= {family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, [""])}
    return names


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of the Markdown headings of ``text``, outside fenced code."""
    found = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^(#{1,6})\s+(.+?)\s*$", line)):
            found.append((len(match.group(1)), match.group(2)))
    return found


def monitoring_section() -> list[tuple[int, str]]:
    """The headings of docs/operations.md's "Monitoring" section, itself included."""
    all_headings = headings(OPERATIONS.read_text(encoding="utf-8"))
    start = all_headings.index((2, "Monitoring"))
    end = next(
        (i for i, (level, _) in enumerate(all_headings) if i > start and level <= 2),
        len(all_headings),
    )
    return all_headings[start:end]


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        # Skipped locally, a failure with CI set (.ci/run installs it).
        require_service("promtool (Debian's prometheus package) is not installed")
    assert found
    return found


def run_promtool(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def bind_mounts(service: str) -> list[tuple[Path, str, str]]:
    """(host path, container path, mode) of a service's bind mounts (``./host:/path:ro``)."""
    mounts = []
    for volume in compose()["services"][service].get("volumes", []):
        if volume.startswith(("./", "/")):
            host, container, *mode = volume.split(":")
            mounts.append((ROOT / host, container, mode[0] if mode else "rw"))
    return mounts


def host_path(service: str, container_path: str) -> Path:
    """Where ``container_path`` of ``service`` comes from in the repository."""
    wanted = PurePosixPath(container_path)
    for host, container, _ in bind_mounts(service):
        if wanted == PurePosixPath(container) or PurePosixPath(container) in wanted.parents:
            return host / wanted.relative_to(container)
    pytest.fail(f"{service} mounts nothing at {container_path}")


def scrape_targets() -> dict[str, list[str]]:
    return {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in load_yaml(SCRAPE_CONFIG)["scrape_configs"]
    }


# --- PromQL --------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "expr"), expressions(), ids=lambda value: str(value)[:60])
def test_every_rule_and_panel_expression_parses(where: str, expr: str) -> None:
    try:
        parsed = promql_parser.parse(expr)
    except ValueError as error:
        pytest.fail(f"{where}: {error}\n{expr}")
    assert metric_names(expr), f"{where} selects no metric: {parsed}"


def test_expressions_that_do_not_parse_are_caught() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(django_http_responses_total_by_status_total[5m])")
    with pytest.raises(ValueError):
        promql_parser.parse("rate(pokewatch_ratelimit_refusals_total[$__whatever])")
    assert metric_names('max(up{job="web"}) + {__name__="pokewatch_drift_psi"}') == {
        "up",
        "pokewatch_drift_psi",
    }


@pytest.mark.django_db
def test_every_metric_the_rules_and_the_dashboard_name_is_exported(
    world: World, settings: Any
) -> None:
    """The names come from /metrics itself, scraped after making what the state metrics
    are read from: prices of a source (freshness), a champion with its quality metrics and
    published signals (the ``world``), and finished training runs. Event metrics (counters,
    histograms) are declared before any event, so their names are on the page already."""
    from pipelines.models import TrainingRun

    world.champion.metrics = {"mape": 0.12, "band_coverage": 0.8, "signal_rate": 0.25}
    world.champion.save(update_fields=["metrics"])
    now = timezone.now()
    for status, minutes_ago in [("succeeded", 120), ("failed", 60)]:
        TrainingRun.objects.create(
            status=status,
            started_at=now - timedelta(minutes=minutes_ago),
            finished_at=now - timedelta(minutes=minutes_ago - 10),
            step_timings={"plan_shards": 0.5, "train_candidate": 30.0},
        )
    settings.POKEWATCH_METRICS_TOKEN = "monitoring-test-token"

    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer monitoring-test-token")

    assert response.status_code == 200, response.content[:500]
    exported = exported_names(response.content.decode())
    assert "pokewatch_newest_price_age_seconds" in exported  # the state metrics were read
    unknown = {
        f"{where}: {name}"
        for where, expr in expressions()
        for name in metric_names(expr)
        if name not in exported | PROMETHEUS_SERIES
    }
    assert not unknown, "not exported by /metrics:\n" + "\n".join(sorted(unknown))


def test_the_exported_names_include_declared_families_without_samples() -> None:
    page = (
        "# HELP pokewatch_auth_failures_total doc\n# TYPE pokewatch_auth_failures_total counter\n"
        "# HELP h doc\n# TYPE h histogram\n"
        "# HELP g doc\n# TYPE g gauge\ng 1.0\n"
    )
    assert exported_names(page) == {
        "pokewatch_auth_failures_total",
        "h_bucket",
        "h_sum",
        "h_count",
        "g",
    }


# --- Alert rules ---------------------------------------------------------------------------


def test_every_alert_of_the_issue_is_there() -> None:
    names = [rule["alert"] for rule in alerting_rules()]
    assert len(names) == len(set(names)), names
    missing = {what: name for what, name in REQUIRED_ALERTS.items() if name not in names}
    assert not missing, missing
    assert all(re.fullmatch(r"PokeWatch(?:[A-Z][a-z0-9]*)+", name) for name in names), names


def test_every_alert_has_a_severity_a_summary_and_a_runbook_in_the_operations_docs() -> None:
    section = monitoring_section()
    documented = {github_anchor(title): title for level, title in section if level > 2}
    for rule in alerting_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        path, _, anchor = annotations["runbook"].partition("#")
        assert path == "docs/operations.md", name
        assert documented.get(anchor) == name, f"{name}: no heading {name} under Monitoring"
    alert_headings = {title for level, title in section if title.startswith("PokeWatch")}
    assert alert_headings == {rule["alert"] for rule in alerting_rules()}


def test_the_latency_alert_is_a_p99_that_must_hold() -> None:
    (rule,) = [rule for rule in alerting_rules() if rule["alert"] == "PokeWatchHighLatency"]
    assert "histogram_quantile(0.99," in re.sub(r"\s", "", rule["expr"])
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in rule["expr"]
    assert rule.get("for"), "a latency spike of one evaluation must not fire it"


def test_the_unit_tests_show_every_alert_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(ALERTS_TEST)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerting_rules()}
    assert names - firing == set(), "never shown firing"
    assert names - quiet == set(), "never shown quiet"
    assert load_yaml(ALERTS_TEST)["rule_files"] == [ALERTS.name]


def test_promtool_checks_the_rules() -> None:
    run_promtool("check", "rules", str(ALERTS), cwd=ROOT)


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    run_promtool("test", "rules", str(ALERTS_TEST), cwd=ROOT)


def test_promtool_unit_tests_fail_when_an_alert_is_wrong(tmp_path: Path) -> None:
    """The unit tests are really run: with a higher error threshold the 5xx alert stops
    firing and promtool says so."""
    broken = ALERTS.read_text(encoding="utf-8").replace("> 0.01", "> 0.05")
    assert broken != ALERTS.read_text(encoding="utf-8")
    (tmp_path / ALERTS.name).write_text(broken, encoding="utf-8")
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    result = subprocess.run(
        [promtool(), "test", "rules", ALERTS_TEST.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "PokeWatchHighErrorRate" in result.stdout + result.stderr


# --- Scrape configuration ------------------------------------------------------------------


def test_promtool_checks_the_scrape_config(tmp_path: Path) -> None:
    """Checked from a copy whose token file exists (compose mounts the secret at
    /run/secrets/metrics_token), with the rule files beside it as in the container."""
    config = load_yaml(SCRAPE_CONFIG)
    token = tmp_path / "metrics_token"
    token.write_text("test-token\n", encoding="utf-8")
    for job in config["scrape_configs"]:
        assert job["authorization"]["credentials_file"] == TOKEN_FILE, job["job_name"]
        job["authorization"]["credentials_file"] = str(token)
    for rule_file in config["rule_files"]:
        shutil.copy(PROMETHEUS_DIR / rule_file, tmp_path / rule_file)
    (tmp_path / SCRAPE_CONFIG.name).write_text(yaml.safe_dump(config), encoding="utf-8")
    run_promtool("check", "config", SCRAPE_CONFIG.name, cwd=tmp_path)


def test_prometheus_scrapes_web_and_worker_on_the_ports_they_serve() -> None:
    services = compose()["services"]
    worker_port = services["worker"]["environment"]["POKEWATCH_WORKER_METRICS_PORT"]
    assert scrape_targets() == {
        "web": [f"web:{services['web']['environment']['PORT']}"],
        "worker": [f"worker:{worker_port}"],
    }
    # The jobs the alerts name.
    (target_down,) = [r for r in alerting_rules() if r["alert"] == "PokeWatchTargetDown"]
    assert all(job in target_down["expr"] for job in scrape_targets())
    for name in ["web", "worker"]:
        assert services[name]["environment"]["POKEWATCH_METRICS_TOKEN"].startswith(
            "${POKEWATCH_METRICS_TOKEN"
        ), name


def test_the_scrape_config_loads_the_rules_it_sits_beside() -> None:
    config = load_yaml(SCRAPE_CONFIG)
    assert config["rule_files"] == [ALERTS.name]
    # Mounted where the config sits in the container.
    command = compose()["services"]["prometheus"]["command"]
    (config_flag,) = [arg for arg in command if arg.startswith("--config.file=")]
    container_config = config_flag.split("=", 1)[1]
    assert host_path("prometheus", container_config) == SCRAPE_CONFIG
    rules_in_container = str(PurePosixPath(container_config).parent / ALERTS.name)
    assert host_path("prometheus", rules_in_container) == ALERTS


# --- Grafana -------------------------------------------------------------------------------


def test_the_dashboard_is_valid_and_every_panel_uses_the_provisioned_data_source() -> None:
    (datasource,) = load_yaml(DATASOURCES)["datasources"]
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert {panel["type"] for panel in panels} <= {"row", "timeseries", "stat"}
    for panel in panels:
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("h", "w", "x", "y")), panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for source in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert source == {"type": datasource["type"], "uid": datasource["uid"]}, panel


def test_the_dashboard_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_the_dashboard_shows_every_application_metric() -> None:
    shown = {
        name
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
        for name in metric_names(grafana_expression(target["expr"]))
    }
    assert APPLICATION_METRICS - shown == set()


def test_grafana_is_provisioned_with_the_dashboard_and_the_prometheus_service() -> None:
    (datasource,) = load_yaml(DATASOURCES)["datasources"]
    url = urlsplit(datasource["url"])
    assert datasource["type"] == "prometheus"
    assert url.hostname == "prometheus" and url.hostname in compose()["services"]
    assert f"127.0.0.1:{url.port}:{url.port}" in compose()["services"]["prometheus"]["ports"]
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert provider["type"] == "file"
    assert host_path("grafana", provider["options"]["path"]) == DASHBOARD.parent
    # Grafana reads its provisioning from /etc/grafana/provisioning.
    for path in [DATASOURCES, DASHBOARD_PROVIDERS]:
        relative = path.relative_to(GRAFANA_DIR / "provisioning")
        assert host_path("grafana", f"/etc/grafana/provisioning/{relative}") == path


# --- docker-compose.yml ----------------------------------------------------------------------


def test_monitoring_services_run_only_with_their_profile() -> None:
    for name, service in compose()["services"].items():
        if name in MONITORING:
            assert service["profiles"] == ["monitoring"], name
        else:
            assert "profiles" not in service, f"{name} must start with a plain `up`"


def test_monitoring_services_mount_files_of_the_repository_read_only() -> None:
    for name in MONITORING:
        mounts = bind_mounts(name)
        assert mounts, name
        for host, container, mode in mounts:
            assert host.exists(), f"{name} mounts {host.relative_to(ROOT)}: no such path"
            assert host.is_relative_to(ROOT / "config"), host
            assert mode == "ro", f"{name}: {container} must be read-only"
        named = [v for v in compose()["services"][name]["volumes"] if not v.startswith(".")]
        assert len(named) == 1, f"{name} keeps its data in one named volume"


def test_monitoring_images_are_pinned() -> None:
    for name in MONITORING:
        image = compose()["services"][name]["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: {image}"


def test_the_token_and_the_grafana_password_are_compose_secrets_from_the_environment() -> None:
    services = compose()["services"]
    secrets = compose()["secrets"]
    assert secrets[TOKEN_SECRET] == {"environment": "POKEWATCH_METRICS_TOKEN"}
    assert services["prometheus"]["secrets"] == [TOKEN_SECRET]
    grafana = services["grafana"]
    password_file = grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    (secret,) = grafana["secrets"]
    assert password_file == f"/run/secrets/{secret}"
    assert set(secrets[secret]) == {"environment"}
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana["environment"]
