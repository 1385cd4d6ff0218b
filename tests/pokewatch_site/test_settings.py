from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from pokewatch_site.env import env_bool, env_float, env_int, env_list
from tests.support import ROOT


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "pokewatch_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_if_debug_is_off_without_secret_key_then_startup_is_refused() -> None:
    result = load_settings(DEBUG="0", ALLOWED_HOSTS="api.example.org")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_if_debug_is_off_without_allowed_hosts_then_startup_is_refused() -> None:
    env = {"DEBUG": "0", "SECRET_KEY": "x" * 50}
    result = load_settings(**env, ALLOWED_HOSTS="")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_production_settings_load_with_a_real_secret_and_hosts() -> None:
    result = load_settings(DEBUG="0", SECRET_KEY="k" * 50, ALLOWED_HOSTS="api.example.org")
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


def test_if_several_workers_have_no_shared_cache_then_startup_is_refused() -> None:
    env = {"DEBUG": "0", "SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "api.example.org"}
    result = load_settings(**env, WEB_CONCURRENCY="4", REDIS_URL="")
    assert result.returncode != 0
    assert "4 web workers without REDIS_URL" in result.stderr
    assert "WEB_CONCURRENCY=1" in result.stderr


@pytest.mark.parametrize(
    ("env", "hops"),
    [
        ({}, 0),
        ({"POKEWATCH_TRUSTED_PROXY": "1"}, 1),  # the older switch: one proxy
        ({"POKEWATCH_TRUSTED_PROXY": "1", "POKEWATCH_TRUSTED_PROXY_HOPS": "2"}, 2),
    ],
)
def test_trusted_proxy_hops_come_from_the_environment(env: dict[str, str], hops: int) -> None:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"POKEWATCH_TRUSTED_PROXY", "POKEWATCH_TRUSTED_PROXY_HOPS"}
    }
    script = "from django.conf import settings; print(settings.POKEWATCH_TRUSTED_PROXY_HOPS)"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "pokewatch_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == str(hops), result.stderr


JSON_LOG_SCRIPT = """
import logging
import django
django.setup()
from django.test import Client
response = Client().get("/api/v1/no-such-endpoint/", HTTP_X_REQUEST_ID="req-42")
print(response.status_code, response["X-Request-ID"])
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("prices").exception("scoring failed for %s", "card-1")
"""


def test_json_logs_are_one_object_a_line_with_the_request_id_and_traceback() -> None:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "-c", JSON_LOG_SCRIPT],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "pokewatch_site.settings", "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["404", "req-42"]
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    by_logger = {line["logger"]: line for line in lines}

    not_found = by_logger["django.request"]
    assert not_found["level"] == "WARNING"
    assert not_found["request_id"] == "req-42"
    assert not_found["message"] == "Not Found: /api/v1/no-such-endpoint/"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", not_found["time"])
    assert "exception" not in not_found

    failed = by_logger["prices"]
    assert (failed["level"], failed["message"]) == ("ERROR", "scoring failed for card-1")
    assert failed["request_id"] == "-"  # outside any request
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in failed["exception"]


def test_if_the_log_format_is_unknown_then_startup_names_it() -> None:
    result = load_settings(LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be plain or json" in result.stderr


def test_production_settings_pass_the_deploy_check() -> None:
    import secrets

    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **clean,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "api.example.org",
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_if_a_boolean_is_malformed_then_startup_names_it() -> None:
    result = load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_env_helpers_parse_and_reject(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_B", "yes")
    monkeypatch.setenv("PW_I", "12")
    monkeypatch.setenv("PW_F", "0.5")
    monkeypatch.setenv("PW_L", " a, b ,,c")
    assert env_bool("PW_B") is True
    assert env_int("PW_I", 1) == 12
    assert env_float("PW_F", 1.0) == 0.5
    assert env_list("PW_L") == ["a", "b", "c"]
    assert env_int("PW_MISSING", 7) == 7
    monkeypatch.setenv("PW_I", "twelve")
    with pytest.raises(ImproperlyConfigured, match="PW_I must be an integer"):
        env_int("PW_I", 1)
    monkeypatch.setenv("PW_F", "half")
    with pytest.raises(ImproperlyConfigured, match="PW_F must be a number"):
        env_float("PW_F", 1.0)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"POKEWATCH_SIGNAL_RULE": "vibes"},
            "POKEWATCH_SIGNAL_RULE must be one of band, deviation",
        ),
        ({"POKEWATCH_HORIZON_DAYS": "0"}, "POKEWATCH_HORIZON_DAYS must be between 1 and 90"),
        ({"POKEWATCH_HORIZON_DAYS": "thirty"}, "POKEWATCH_HORIZON_DAYS must be an integer"),
        ({"POKEWATCH_DRIFT_WINDOW_DAYS": "0"}, "POKEWATCH_DRIFT_WINDOW_DAYS must be 1 or more"),
        ({"POKEWATCH_DRIFT_PSI_THRESHOLD": "0"}, "POKEWATCH_DRIFT_PSI_THRESHOLD above 0, got"),
        ({"POKEWATCH_DRIFT_PSI_THRESHOLD": "high"}, "POKEWATCH_DRIFT_PSI_THRESHOLD must be a"),
    ],
)
def test_if_model_settings_are_bad_then_startup_is_refused(env: dict, message: str) -> None:
    result = load_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_signal_rule_is_read_case_insensitively(monkeypatch) -> None:
    from pokewatch_site.env import env_choice

    monkeypatch.setenv("RULE", " Deviation ")
    assert env_choice("RULE", "band", ("band", "deviation")) == "deviation"
    monkeypatch.delenv("RULE")
    assert env_choice("RULE", "band", ("band", "deviation")) == "band"
