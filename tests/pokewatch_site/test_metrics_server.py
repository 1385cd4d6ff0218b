"""The multiprocess directory's upkeep and the worker's metrics WSGI app."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest

from pokewatch_site import metrics_server
from tests.support.metrics import TOKEN, parse


def test_clearing_removes_earlier_processes_files_only(tmp_path: Path, monkeypatch) -> None:
    directory = tmp_path / "metrics"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    assert metrics_server.clear_multiprocess_dir() == 0  # created if missing
    (directory / "counter_1.db").write_bytes(b"x")
    (directory / "histogram_2.db").write_bytes(b"x")
    (directory / "notes.txt").write_text("kept")
    assert metrics_server.clear_multiprocess_dir() == 2
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]


def test_without_a_directory_there_is_nothing_to_clear(monkeypatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert metrics_server.clear_multiprocess_dir() == 0
    metrics_server.mark_process_dead(12345)  # single-process mode: nothing to forget


def _call(path: str, method: str = "GET", **headers: str) -> tuple[str, dict, bytes]:
    seen: dict = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen.update(status=status, headers=dict(response_headers))

    environ = {
        "PATH_INFO": path,
        "REQUEST_METHOD": method,
        "REMOTE_ADDR": "10.0.0.9",
        "wsgi.input": BytesIO(),
        **headers,
    }
    body = b"".join(metrics_server.wsgi_app(environ, start_response))
    return seen["status"], seen["headers"], body


@pytest.mark.django_db
def test_the_worker_app_serves_events_with_the_token_only(metrics_token) -> None:
    status, headers, body = _call("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == "200 OK" and headers["Content-Type"].startswith("text/plain")
    samples = parse(body)
    assert ("pokewatch_prediction_cache_hits_total", frozenset()) in samples
    assert not any(name == "pokewatch_metrics_source_up" for name, _ in samples)  # no state

    status, headers, body = _call("/metrics")
    assert status == "401 Unauthorized" and headers["WWW-Authenticate"].startswith("Bearer")
    assert b"POKEWATCH_METRICS_TOKEN" in body
    assert _call("/other", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")[0] == "404 Not Found"
    assert _call("/metrics", "POST", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")[0] == "404 Not Found"


def test_without_a_token_the_worker_app_refuses_remote_clients(settings) -> None:
    settings.POKEWATCH_METRICS_TOKEN = ""
    status, _, body = _call("/metrics")
    assert status == "403 Forbidden" and b"loopback" in body
