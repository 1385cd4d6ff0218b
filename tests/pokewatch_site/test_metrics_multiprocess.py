"""Several gunicorn workers, one ``/metrics``: prometheus-client's multiprocess mode adds
every worker's counts up (a real gunicorn with the project's configuration)."""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.support.gunicorn import Gunicorn
from tests.support.metrics import TOKEN, parse, value

pytestmark = [pytest.mark.redis, pytest.mark.postgres]  # two workers need shared counters
FAILURES = "pokewatch_auth_failures"


def _get(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers={"Connection": "close", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _failures_per_process(directory: Path) -> dict[str, float]:
    """Each worker's own count of unknown-key failures, from its own file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(path)]):
            for sample in family.samples:
                if sample.name == f"{FAILURES}_total" and sample.labels == {"reason": "unknown"}:
                    counts[path.stem.removeprefix("counter_")] = sample.value
    return counts


def test_counts_of_two_workers_add_up_on_one_page(db, tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    with Gunicorn(
        tmp_path,
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="2",
        POKEWATCH_METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(directory),
    ) as server:
        base = f"http://127.0.0.1:{server.port}"
        url = f"{base}/api/v1/cards/sv2a-151-mew-ex-205/fair-price/"
        sent = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            # Until both workers have answered some: the kernel picks who accepts.
            while (
                sent < 400 and len([v for v in _failures_per_process(directory).values() if v]) < 2
            ):
                codes = list(
                    pool.map(
                        lambda _: _get(url, **{"X-API-Key": "Unknown0.secretsecretsecret"}),
                        range(40),
                    )
                )
                assert set(codes) == {401}, codes
                sent += len(codes)
        per_process = {pid: n for pid, n in _failures_per_process(directory).items() if n}
        assert len(per_process) == 2, (per_process, server.log())

        request = urllib.request.Request(
            f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            samples = parse(response.read())
        assert value(samples, f"{FAILURES}_total", reason="unknown") == sent
        assert sum(per_process.values()) == sent
        assert value(samples, "django_http_responses_total_by_status_total", status="401") >= sent
        assert _get(f"{base}/metrics") == 401  # the token holds under gunicorn too
