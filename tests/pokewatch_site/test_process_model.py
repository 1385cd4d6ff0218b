"""One process model: gunicorn (config/gunicorn.conf.py) and the settings agree on how many
web workers run, and several workers never count rate limits alone.

The gunicorn tests start the real server with the production configuration on a free port.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from pokewatch_site.process_model import check_workers, default_workers
from tests.support import ROOT, database_url
from tests.support.gunicorn import free_port, gunicorn_command, gunicorn_env


@pytest.mark.parametrize(
    ("redis_url", "web_concurrency", "workers"),
    [("redis://127.0.0.1:6379", "", 4), ("", "", 1), ("", "1", 1), ("redis://r", "3", 3)],
)
def test_if_redis_is_set_then_four_workers_else_one(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, web_concurrency: str, workers: int
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("WEB_CONCURRENCY", web_concurrency)
    assert default_workers() == workers
    check_workers(workers)  # the default is always allowed


def test_if_several_workers_have_per_process_counters_then_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", " ")
    check_workers(1)
    with pytest.raises(ImproperlyConfigured, match="2 web workers without REDIS_URL"):
        check_workers(2)


@pytest.mark.parametrize(
    ("how", "env", "args"),
    [
        ("WEB_CONCURRENCY", {"WEB_CONCURRENCY": "2"}, []),
        ("--workers", {}, ["--workers", "3"]),
        ("DEBUG on", {"WEB_CONCURRENCY": "2", "DEBUG": "1"}, []),
    ],
)
def test_if_gunicorn_gets_several_workers_without_redis_then_it_refuses_to_start(
    tmp_path: Path, how: str, env: dict[str, str], args: list[str]
) -> None:
    port = free_port()
    result = subprocess.run(
        gunicorn_command(port, *args),
        cwd=ROOT,
        env=gunicorn_env(tmp_path, REDIS_URL="", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, how
    assert "web workers without REDIS_URL" in result.stderr, result.stderr
    assert "Set REDIS_URL, or run one worker (WEB_CONCURRENCY=1)." in result.stderr
    assert "Traceback" not in result.stderr
    assert "Booting worker" not in result.stderr


@pytest.fixture
def two_workers(transactional_db, tmp_path: Path) -> Iterator[str]:
    """gunicorn with the production configuration, 2 workers, REDIS_URL: its base URL."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            gunicorn_command(port),
            cwd=ROOT,
            env=gunicorn_env(tmp_path, WEB_CONCURRENCY="2", DATABASE_URL=database_url()),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("Booting worker") < 2 or not _answers(base):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.25)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/api/v1/no-such/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _status(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.mark.redis
@pytest.mark.postgres
def test_a_5_per_minute_key_gets_exactly_5_from_two_gunicorn_workers(
    two_workers: str, make_key
) -> None:
    from django.test import RequestFactory
    from django_ratelimit.core import get_usage

    issued = make_key("five a minute", rate="5/m")
    # Counting windows are django-ratelimit's: keep the burst inside one of them.
    usage = get_usage(
        RequestFactory().get("/"),
        group="read",
        key=lambda group, request: f"key:{issued.prefix}",
        rate="5/m",
    )
    assert usage is not None
    left = usage["time_left"]
    if left < 15:
        time.sleep(left + 1)
    url = f"{two_workers}/api/v1/cards/"
    with ThreadPoolExecutor(max_workers=6) as pool:  # concurrent: both workers answer
        statuses = list(pool.map(lambda _: _status(url, issued.raw), range(12)))
    assert Counter(statuses) == {200: 5, 429: 7}
