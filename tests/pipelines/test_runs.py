"""The training-run lifecycle without a worker: slot, skip, sweep, take-over, admin, command."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pipelines import tasks
from pipelines.models import TrainingRun
from pipelines.runs import claim_run, heartbeat, sweep_stale_runs

Status = TrainingRun.Status


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Capture what would be sent to the broker instead of sending it."""
    calls: list[int] = []

    class Result:
        id = "task-1"

    def apply_async(args: list[int], **kwargs: object) -> Result:
        calls.append(args[0])
        return Result()

    monkeypatch.setattr(tasks.train_model, "apply_async", apply_async)
    return calls


def test_second_claim_is_recorded_as_skipped(db) -> None:
    first = claim_run(TrainingRun.Trigger.ADMIN)
    second = claim_run(TrainingRun.Trigger.SCHEDULE)
    assert (first.status, second.status) == (Status.QUEUED, Status.SKIPPED)
    assert f"run #{first.pk} is queued" in second.reason
    assert second.active_slot is None and second.finished_at


def test_sweep_frees_the_slot_of_a_run_older_than_the_hard_limit(db, settings) -> None:
    run = claim_run(TrainingRun.Trigger.ADMIN)  # queued, and no worker ever took it
    TrainingRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.POKEWATCH_TRAINING_HARD_LIMIT + 61),
    )
    assert sweep_stale_runs() == 1
    run.refresh_from_db()
    assert (run.status, run.active_slot) == (Status.FAILED, None)
    assert "worker died or hit the time limit" in run.error
    assert claim_run(TrainingRun.Trigger.ADMIN).status == Status.QUEUED


def test_if_a_running_runs_heartbeat_stopped_then_the_sweep_fails_it(db, settings) -> None:
    settings.POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT = 180
    run = claim_run(TrainingRun.Trigger.ADMIN)
    now = timezone.now()
    TrainingRun.objects.filter(pk=run.pk).update(
        status=Status.RUNNING, started_at=now - timedelta(hours=1), heartbeat_at=now
    )
    assert sweep_stale_runs() == 0  # an hour old, but beating
    assert claim_run(TrainingRun.Trigger.SCHEDULE).status == Status.SKIPPED

    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=now - timedelta(seconds=181))
    assert sweep_stale_runs() == 1
    run.refresh_from_db()
    assert (run.status, run.active_slot) == (Status.FAILED, None)
    assert run.error == "no heartbeat for 180 s: the worker running it died"
    assert claim_run(TrainingRun.Trigger.ADMIN).status == Status.QUEUED


def test_a_running_run_without_a_heartbeat_yet_counts_from_its_start(db, settings) -> None:
    settings.POKEWATCH_TRAINING_HEARTBEAT_TIMEOUT = 180
    run = claim_run(TrainingRun.Trigger.ADMIN)
    started = timezone.now() - timedelta(seconds=120)
    TrainingRun.objects.filter(pk=run.pk).update(status=Status.RUNNING, started_at=started)
    assert sweep_stale_runs() == 0
    TrainingRun.objects.filter(pk=run.pk).update(started_at=started - timedelta(seconds=61))
    assert sweep_stale_runs() == 1


def test_the_heartbeat_thread_touches_the_running_run(transactional_db, settings) -> None:
    settings.POKEWATCH_TRAINING_HEARTBEAT_SECONDS = 1
    run = claim_run(TrainingRun.Trigger.ADMIN)
    TrainingRun.objects.filter(pk=run.pk).update(status=Status.RUNNING)
    with heartbeat(run.pk):
        deadline = time.monotonic() + 10
        while TrainingRun.objects.get(pk=run.pk).heartbeat_at is None:
            assert time.monotonic() < deadline, "no heartbeat in 10 s"
            time.sleep(0.2)
        first = TrainingRun.objects.get(pk=run.pk).heartbeat_at
        time.sleep(1.5)
        assert TrainingRun.objects.get(pk=run.pk).heartbeat_at > first
    last = TrainingRun.objects.get(pk=run.pk).heartbeat_at
    time.sleep(1.5)
    assert TrainingRun.objects.get(pk=run.pk).heartbeat_at == last  # stopped with the body


def test_a_redelivered_running_run_is_failed_and_retried_once(db, monkeypatch) -> None:
    ran: list[int] = []
    monkeypatch.setattr(tasks, "run_training", lambda run_id: ran.append(run_id) or _done(run_id))
    dead = claim_run(TrainingRun.Trigger.SCHEDULE)
    TrainingRun.objects.filter(pk=dead.pk).update(status=Status.RUNNING, worker="host:42")

    tasks.train_model(dead.pk)

    dead.refresh_from_db()
    retry = TrainingRun.objects.get(retry_of=dead)
    assert dead.status == Status.FAILED and "(host:42) died; retried" in dead.error
    assert ran == [retry.pk] and retry.trigger == TrainingRun.Trigger.SCHEDULE

    # The retry dies as well: it is failed and not retried again.
    TrainingRun.objects.filter(pk=retry.pk).update(status=Status.RUNNING, active_slot=1)
    tasks.train_model(retry.pk)
    retry.refresh_from_db()
    assert retry.status == Status.FAILED and "not retried again" in retry.error
    assert not TrainingRun.objects.filter(retry_of=retry).exists()


def _done(run_id: int) -> TrainingRun:
    TrainingRun.objects.filter(pk=run_id).update(status=Status.SUCCEEDED, active_slot=None)
    return TrainingRun.objects.get(pk=run_id)


def test_finished_or_missing_runs_are_not_run_again(db, monkeypatch) -> None:
    monkeypatch.setattr(tasks, "run_training", lambda run_id: pytest.fail("must not run"))
    run = TrainingRun.objects.create(status=Status.SUCCEEDED)
    assert tasks.train_model(run.pk) == {"run": run.pk, "status": "succeeded"}
    assert tasks.train_model(999_999)["status"] == "missing"


def test_enqueue_sends_after_commit_and_records_the_task(
    db, sent, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run = tasks.enqueue_training(TrainingRun.Trigger.ADMIN)
    run.refresh_from_db()
    assert sent == [run.pk] and run.task_id == "task-1"


def test_if_the_broker_is_down_then_the_run_fails_and_frees_the_slot(db, monkeypatch) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("redis refused")

    monkeypatch.setattr(tasks.train_model, "apply_async", down)
    run = claim_run(TrainingRun.Trigger.ADMIN)
    tasks._send(run)
    run.refresh_from_db()
    assert (run.status, run.active_slot) == (Status.FAILED, None)
    assert "could not reach the Celery broker" in run.error


def test_run_pipeline_async_prints_the_run_id_and_refuses_a_second(
    db, sent, django_capture_on_commit_callbacks
) -> None:
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_pipeline", "--async", stdout=out)
    run_id = int(out.getvalue().strip().splitlines()[-1])
    assert TrainingRun.objects.get(pk=run_id).status == Status.QUEUED
    with pytest.raises(CommandError, match=f"skipped: run #{run_id} is queued"):
        call_command("run_pipeline", "--async", stdout=StringIO())


def test_admin_buttons_queue_training_and_collection(
    admin_client: Client, sent, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    collected: list[dict] = []

    class Result:
        id = "collect-1"

    monkeypatch.setattr(
        tasks.collect_prices_task, "delay", lambda **kw: collected.append(kw) or Result()
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:pipelines_trainingrun_run"), follow=True)
    assert "queued" in response.text and len(sent) == 1
    again = admin_client.post(reverse("admin:pipelines_trainingrun_run"), follow=True)
    assert "only one training run at a time" in again.text
    collect = admin_client.post(reverse("admin:pipelines_trainingrun_collect"), follow=True)
    assert "Price collection queued (task collect-1)" in collect.text
    assert collected == [{"trigger": "admin"}]  # its CollectionRun says who started it
    assert admin_client.get(reverse("admin:pipelines_trainingrun_run")).status_code == 405


@pytest.mark.redis
def test_if_the_broker_hangs_then_the_collect_button_says_so_in_time(
    admin_client: Client, black_hole, monkeypatch, settings
) -> None:
    from pokewatch_site.celery import app

    # A producer pool on the hung broker for this test only: the app's pools are put back
    # afterwards (a pool left on the black hole would fail every later publish).
    monkeypatch.setattr(app.conf, "broker_url", f"{black_hole}/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    attempts = app.conf.task_publish_retry_policy["max_retries"] + 1
    started = time.monotonic()
    response = admin_client.post(reverse("admin:pipelines_trainingrun_collect"), follow=True)
    assert time.monotonic() - started < attempts * settings.POKEWATCH_BROKER_TIMEOUT + 2.0
    assert response.status_code == 200
    assert "Price collection not queued: the Celery broker could not be reached" in response.text
    monkeypatch.undo()
    with app.producer_or_acquire() as producer:  # the real broker again
        assert producer.connection.as_uri().split("/")[-1] == str(settings.REDIS_BROKER_DB)


def test_admin_shows_the_beat_schedule(admin_client: Client, settings) -> None:
    page = admin_client.get(reverse("admin:pipelines_trainingrun_changelist"))
    assert page.status_code == 200
    for name in ("nightly-training", "daily-price-collection", "sweep-dead-training-runs"):
        assert name in page.text
    assert "0 3 * * *" in page.text


def test_a_malformed_cron_stops_startup_with_its_name() -> None:
    import subprocess
    import sys

    from tests.support import ROOT

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "pokewatch_site.settings",
            "POKEWATCH_TRAINING_CRON": "every night",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "POKEWATCH_TRAINING_CRON must be a 5-field crontab" in result.stderr


def test_collection_task_collects_and_reports(db, make_card) -> None:
    make_card(card_id="sim-a")
    result = tasks.collect_prices_task("simulated", days=3)
    assert result["received"] >= 2


def test_collection_task_retries_only_transient_errors() -> None:
    from pokewatch_site.errors import SourceUnavailable

    assert tasks.collect_prices_task.autoretry_for == (SourceUnavailable,)
    assert tasks.collect_prices_task.max_retries == 5
    assert tasks.train_model.acks_late and tasks.train_model.reject_on_worker_lost


def test_schedule_command_lists_every_entry() -> None:
    out = StringIO()
    call_command("schedule", stdout=out)
    text = out.getvalue()
    assert "nightly-training           0 3 * * *" in text
    assert "daily-price-collection" in text and "next 20" in text
