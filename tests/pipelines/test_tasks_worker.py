"""A real Celery worker (and beat) on the real Redis broker, against the real test database.

Not eager mode: the worker is a separate `celery worker` process, so these tests see what
production sees: acks, re-deliveries after a killed worker, the one-run-at-a-time slot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from pipelines.models import ModelVersion, TrainingRun
from pipelines.runs import claim_run
from pipelines.tasks import enqueue_training
from pokewatch_site.celery import app
from prices.models import Card, Prediction
from tests.support import ML_DIR, ROOT, database_url
from tests.support.demo import DEMO_CARDS, DEMO_CSV, SLICE
from tests.support.gunicorn import free_port
from tests.support.metrics import TOKEN, parse, value
from tests.support.pipelines import prediction_frame, rounded

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
Status = TrainingRun.Status
QUEUE = f"pokewatch-test-{uuid.uuid4().hex[:8]}"
DONE = {Status.SUCCEEDED, Status.REJECTED, Status.FAILED, Status.SKIPPED}
METRICS_PORT = free_port()  # the worker's own /metrics (pokewatch_site.metrics_server)


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "MLFLOW_TRACKING_URI": f"sqlite:///{ML_DIR / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_ROOT": (ML_DIR / "mlflow-artifacts").as_uri(),
        # Six products give a noisy band coverage; the gate's band check is tested elsewhere.
        "POKEWATCH_GATE_BAND_COVERAGE_MIN": "0.5",
        "POKEWATCH_GATE_BAND_COVERAGE_MAX": "0.95",
        "POKEWATCH_WORKER_METRICS_PORT": str(METRICS_PORT),
        "POKEWATCH_METRICS_TOKEN": TOKEN,
        **extra,
    }


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "pokewatch_site", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def worker(django_db_setup, tmp_path_factory) -> Iterator[Path]:
    """One `celery worker` (prefork, one child) for the module, on a queue of its own."""
    app.conf.task_default_queue = QUEUE
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    process = _start(
        ["worker", "-Q", QUEUE, "-c", "1", "-l", "info", "--without-gossip", "--without-mingle"],
        log,
        _env(),
    )
    try:
        wait_for(lambda: b"ready." in log.read_bytes(), 60, "the worker to start")
        yield log
    finally:
        _stop(process)


@pytest.fixture
def demo(transactional_db) -> None:
    """Six demo products in committed rows (the worker is another process)."""
    import pandas as pd

    from prices.cards import import_cards_file
    from prices.csv_import import import_price_file

    import_cards_file(DEMO_CARDS)
    Card.objects.exclude(card_id__in=SLICE).update(active=False)
    frame = pd.read_csv(DEMO_CSV)
    path = ML_DIR / f"slice-{uuid.uuid4().hex[:6]}.csv"
    frame[frame["card_id"].isin(SLICE)].to_csv(path, index=False)
    import_price_file(path, source="tcgplayer-demo")


def finished(run_id: int, timeout: float = 180) -> TrainingRun:
    def done() -> TrainingRun | None:
        run = TrainingRun.objects.get(pk=run_id)
        return run if run.status in DONE else None

    return wait_for(done, timeout, f"training run #{run_id} to finish")  # type: ignore[return-value]


def test_triggered_run_succeeds_and_a_simultaneous_trigger_is_skipped(worker, demo) -> None:
    results: list[TrainingRun] = []

    def trigger() -> None:
        results.append(claim_run(TrainingRun.Trigger.ADMIN))
        connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status for r in results)
    assert statuses == [Status.QUEUED, Status.SKIPPED]
    queued = next(r for r in results if r.status == Status.QUEUED)
    from pipelines.tasks import _send

    _send(queued)

    run = finished(queued.pk)
    assert run.status == Status.SUCCEEDED, run.error
    assert run.worker and run.task_id
    champion = ModelVersion.objects.get(is_champion=True)
    assert Prediction.objects.filter(model_version=champion).exists()
    assert TrainingRun.objects.filter(active_slot=1).count() == 0


def test_a_run_that_raises_is_failed_and_the_champion_stays(worker, demo, make_version) -> None:
    old = make_version("last_price", is_champion=True)
    Card.objects.update(active=False)  # nothing to train on: the load step raises
    run = enqueue_training(TrainingRun.Trigger.ADMIN)
    from pipelines.tasks import _send

    _send(run)  # transactional_db: on_commit hooks run at once, but be explicit
    run = finished(run.pk)
    assert run.status == Status.FAILED
    assert "plan_shards: NotEnoughData" in run.error
    assert ModelVersion.objects.get(is_champion=True) == old


def _worker_metrics(token: str = TOKEN) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{METRICS_PORT}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def test_the_worker_serves_its_tasks_and_steps_on_its_own_port(worker, demo) -> None:
    """The pool's child counts, the worker's main process serves (multiprocess mode)."""
    status, page = _worker_metrics()
    assert status == 200, page
    before = parse(page)
    Card.objects.update(active=False)  # nothing to train on: fails fast at plan_shards
    run = enqueue_training(TrainingRun.Trigger.ADMIN)
    from pipelines.tasks import _send

    _send(run)
    assert finished(run.pk).status == Status.FAILED
    task = {"task": "pipelines.tasks.train_model"}

    def moved(page: dict) -> dict[str, float]:
        name = "pokewatch_celery_tasks_total"
        return {
            state: value(page, name, **task, state=state) - value(before, name, **task, state=state)
            for state in ("started", "succeeded", "failed")
        }

    def settled() -> dict | None:
        # enqueue_training's on-commit send and _send: one or two deliveries (the second a
        # no-op), each counted started, then succeeded (the failed run is no failed task).
        after = parse(_worker_metrics()[1])
        by = moved(after)
        return after if by["started"] == by["succeeded"] >= 1 and by["failed"] == 0 else None

    after = wait_for(settled, 30, "the worker's metrics to count the task")
    assert isinstance(after, dict)
    steps = "pokewatch_training_step_seconds_count"
    assert value(after, steps, step="plan_shards") - value(before, steps, step="plan_shards") == 1
    # State metrics are the web's: not scraped twice.
    assert not any(name.startswith("pokewatch_training_runs") for name, _ in after)
    status, page = _worker_metrics("wrong")
    assert status == 401 and b"POKEWATCH_METRICS_TOKEN" in page


def test_a_killed_worker_leaves_the_champion_and_its_retry_succeeds(
    worker, demo, make_version
) -> None:
    from pipelines.publishing import publish

    old = make_version("last_price")
    publish(old, prediction_frame(SLICE, 3))
    before = set(Prediction.objects.values_list("pk", flat=True))

    run = claim_run(TrainingRun.Trigger.ADMIN)
    from pipelines.tasks import _send

    _send(run)

    def mid_run() -> str | None:
        current = TrainingRun.objects.get(pk=run.pk)
        return current.worker if "sample_training" in current.step_timings else None

    host_pid = str(wait_for(mid_run, 120, "the run to be half-way"))
    os.kill(int(host_pid.rsplit(":", 1)[1]), signal.SIGKILL)  # the pool child running it

    killed = finished(run.pk, timeout=120)
    assert killed.status == Status.FAILED
    assert "died" in killed.error
    # Nothing of the dead run was published.
    assert ModelVersion.objects.get(is_champion=True) == old
    assert set(Prediction.objects.values_list("pk", flat=True)) == before

    retry = wait_for(
        lambda: TrainingRun.objects.filter(retry_of=killed).first(), 60, "the retry run"
    )
    retry = finished(retry.pk)  # type: ignore[union-attr]
    assert retry.status == Status.SUCCEEDED, retry.error
    assert ModelVersion.objects.get(is_champion=True) != old


@pytest.fixture
def start_worker(django_db_setup, tmp_path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `celery worker`s (prefork, one child) on a given queue; all stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, queue: str, **env: str) -> subprocess.Popen[bytes]:
        log = tmp_path / f"{name}.log"
        args = ["worker", "-Q", queue, "-c", "1", "-l", "info", "--without-gossip"]
        process = _start([*args, "--without-mingle", "-n", f"{name}@%h"], log, _env(**env))
        started.append(process)
        wait_for(lambda: b"ready." in log.read_bytes(), 60, f"worker {name} to start")
        return process

    yield start
    for process in started:
        _stop(process)


def test_a_whole_killed_worker_s_run_is_failed_by_the_sweep_and_a_new_trigger_runs(
    start_worker, demo, settings, monkeypatch
) -> None:
    from pipelines.runs import sweep_stale_runs

    beat, timeout = 1, 4  # seconds: the bound is small here, minutes in production
    settings.POKEWATCH_TRAINING_HEARTBEAT_SECONDS = beat
    settings.POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT = timeout
    env = {
        "POKEWATCH_TRAINING_HEARTBEAT_SECONDS": str(beat),
        "POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT": str(timeout),
    }
    queue = f"pokewatch-heartbeat-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(app.conf, "task_default_queue", queue)
    first = start_worker("first", queue, **env)

    run = enqueue_training(TrainingRun.Trigger.ADMIN)  # sent at once (autocommit)
    assert run.status == Status.QUEUED
    wait_for(
        lambda: TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).exists(),
        60,
        "the run to start",
    )
    # Alive for longer than the bound: its heartbeats keep the sweep away.
    beats = set()
    alive_until = time.monotonic() + timeout + 2
    while time.monotonic() < alive_until:
        assert sweep_stale_runs() == 0
        current = TrainingRun.objects.get(pk=run.pk)
        assert current.status == Status.RUNNING, "the run must outlive the bound"
        beats.add(current.heartbeat_at)
        time.sleep(0.5)
    assert len(beats) >= timeout

    os.killpg(first.pid, signal.SIGKILL)  # the whole worker: parent and pool child
    first.wait(timeout=10)
    killed = time.monotonic()

    def swept() -> TrainingRun | None:
        sweep_stale_runs()  # what beat's sweep-dead-training-runs task runs
        current = TrainingRun.objects.get(pk=run.pk)
        return current if current.status == Status.FAILED else None

    failed = wait_for(swept, timeout + beat + 5, "the sweep to fail the dead run")
    assert time.monotonic() - killed <= timeout + beat + 5
    assert failed.error == f"no heartbeat for {timeout} s: the worker running it died"  # type: ignore[attr-defined]
    assert failed.active_slot is None  # type: ignore[attr-defined]

    start_worker("second", queue, **env)
    again = enqueue_training(TrainingRun.Trigger.ADMIN)
    assert again.status == Status.QUEUED  # not skipped
    assert finished(again.pk).status in {Status.SUCCEEDED, Status.REJECTED}


def test_beat_every_minute_really_enqueues_training(worker, demo, tmp_path) -> None:
    beat = _start(
        ["beat", "-l", "info", "-s", str(tmp_path / "beat-schedule")],
        tmp_path / "beat.log",
        _env(
            POKEWATCH_TRAINING_CRON="* * * * *",
            POKEWATCH_COLLECT_CRON="0 0 1 1 *",
            POKEWATCH_SWEEP_CRON="0 0 1 1 *",
        ),
    )
    try:
        run = wait_for(
            lambda: TrainingRun.objects.filter(trigger=TrainingRun.Trigger.SCHEDULE).first(),
            90,
            "beat to fire the every-minute schedule",
        )
    finally:
        _stop(beat)
    assert finished(run.pk).status in {Status.SUCCEEDED, Status.REJECTED}  # type: ignore[union-attr]


@pytest.fixture
def shard_worker(tmp_path) -> Iterator[tuple[str, Path]]:
    """A `celery worker` with two processes on a shard queue of its own."""
    queue = f"pokewatch-shards-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "shard-worker.log"
    process = _start(
        ["worker", "-Q", queue, "-c", "2", "-l", "info", "--without-gossip", "--without-mingle"],
        log,
        _env(),
    )
    try:
        wait_for(lambda: b"ready." in log.read_bytes(), 60, "the shard worker to start")
        yield queue, log
    finally:
        _stop(process)


def test_shards_run_on_celery_workers_with_the_same_result(
    shard_worker, demo, ml_stores, settings
) -> None:
    from pipelines.models import ShardTask
    from pipelines.runs import run_training

    settings.POKEWATCH_GATE_BAND_COVERAGE_MIN = 0.5
    settings.POKEWATCH_GATE_BAND_COVERAGE_MAX = 0.95
    settings.POKEWATCH_SERVING_WINDOW_DAYS = 60
    settings.POKEWATCH_SHARD_CARDS = 2  # six cards: three shards per phase
    inline = run_training()
    assert inline.status == Status.SUCCEEDED

    queue, _ = shard_worker
    settings.POKEWATCH_SHARDS_ON_CELERY = True
    settings.POKEWATCH_SHARD_QUEUE = queue
    on_celery = run_training()

    assert on_celery.status == Status.SUCCEEDED, on_celery.error
    assert rounded(on_celery.metrics) == rounded(inline.metrics)
    tasks = ShardTask.objects.filter(run=on_celery)
    assert set(tasks.values_list("phase", flat=True)) == {"evaluate", "sample", "serve"}
    assert tasks.count() == 9 and set(tasks.values_list("status", flat=True)) == {"done"}
    assert len({t.worker for t in tasks}) == 2  # both processes took shards
    assert all(t.payload == b"" and t.result is None for t in tasks)  # dropped once read
    champion = ModelVersion.objects.get(is_champion=True)
    assert champion == on_celery.candidate
    assert Prediction.objects.filter(model_version=champion).count() == (
        Prediction.objects.filter(model_version=champion).values("card", "date").distinct().count()
    )
