"""A Content-Security-Policy on the admin and the API docs (django-csp), the docs still
working under it; CORS allows the local development origins only with DEBUG on (issue 13)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from django.test import Client

from tests.support import ROOT


def policy(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    header = response["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


@pytest.mark.parametrize("path", ["/admin/login/", "/api/docs/", "/api/v1/health/"])
def test_pages_carry_a_policy_without_inline_scripts(client: Client, db, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    directives = policy(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]


def test_the_docs_load_their_init_script_as_a_file(client: Client, db) -> None:
    page = client.get("/api/docs/").content.decode()
    assert "<script>" not in page  # no inline script for the policy to block
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


@pytest.mark.skipif(not shutil.which("chromium"), reason="no chromium on this machine")
def test_the_docs_render_in_a_browser_under_the_policy(live_server) -> None:
    """Swagger UI builds the operation list in JavaScript: it is there only if the policy
    let the bundle and the init script run."""
    result = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=8000",
            "--dump-dom",
            f"{live_server.url}/api/docs/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "/api/v1/fair-price/batch/" in result.stdout, result.stderr[-2000:]
    assert "opblock" in result.stdout


def cors_origins(debug: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CORS_ALLOWED_ORIGINS", "DEBUG"}}
    env.update(
        DEBUG=debug,
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="api.example.org",
        DJANGO_SETTINGS_MODULE="pokewatch_site.settings",
    )
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.CORS_ALLOWED_ORIGINS))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_cors_allows_the_development_origins_only_with_debug_on() -> None:
    assert cors_origins("1") == [
        "http://localhost:3000",
        "http://127.0.0.1:3000",
        "http://localhost:5173",
    ]
    assert cors_origins("0") == []


def test_production_refuses_a_localhost_origin(client: Client, db, settings) -> None:
    settings.CORS_ALLOWED_ORIGINS = []
    response = client.get("/api/v1/health/", HTTP_ORIGIN="http://localhost:3000")
    assert "Access-Control-Allow-Origin" not in response
