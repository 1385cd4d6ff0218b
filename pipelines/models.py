"""Records of the training pipeline: model versions (one champion), training runs, drift reports."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ModelVersion(models.Model):
    """A trained estimator registered in MLflow; at most one is the champion."""

    registered_name = models.CharField(max_length=100, help_text="MLflow registered model name")
    registered_version = models.CharField(max_length=20, blank=True)
    mlflow_run_id = models.CharField(max_length=64, blank=True)
    estimator = models.CharField(
        max_length=40, help_text="'model', or the baseline that won the gate"
    )
    horizon = models.PositiveSmallIntegerField(default=30)
    signal_rule = models.CharField(
        max_length=12, default="band", help_text="how its predictions became signals"
    )
    trained_at = models.DateTimeField(auto_now_add=True)
    data_start = models.DateField(null=True, blank=True)
    data_end = models.DateField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    is_champion = models.BooleanField(default=False)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-trained_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_champion"],
                condition=models.Q(is_champion=True),
                name="modelversion_one_champion",
            )
        ]

    def __str__(self) -> str:
        version = f" v{self.registered_version}" if self.registered_version else ""
        return f"{self.registered_name}{version} ({self.estimator})"

    @property
    def label(self) -> str:
        return f"{self.registered_name}/{self.registered_version or self.pk}"


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        REJECTED = "rejected"
        FAILED = "failed"
        SKIPPED = "skipped"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        ADMIN = "admin"
        COMMAND = "command"

    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.COMMAND)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched every POKEWATCH_TRAINING_HEARTBEAT_SECONDS by the process running the run; a
    # running run whose heartbeat stopped is failed by the sweep (pipelines.runs).
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="last sign of life of the worker running it"
    )
    step_timings = models.JSONField(default=dict, blank=True, help_text="seconds per step")
    metrics = models.JSONField(default=dict, blank=True, help_text="candidate and baselines")
    cards_scored = models.PositiveIntegerField(
        default=0, help_text="cards its model scored on the newest day (0: nothing served)"
    )
    champion_metrics = models.JSONField(default=dict, blank=True)
    candidate = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    promoted = models.BooleanField(default=False)
    reason = models.TextField(blank=True, help_text="why the candidate was promoted or rejected")
    mlflow_run_id = models.CharField(max_length=64, blank=True)
    zenml_run_id = models.CharField(max_length=64, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host and pid of the worker")
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    error = models.TextField(blank=True)
    # 1 while the run is queued or running, NULL otherwise: the unique constraint makes
    # "at most one active training run" hold across every worker, whatever the broker.
    active_slot = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["active_slot"], name="trainingrun_one_active"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.status} ({self.trigger})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class ShardTask(models.Model):
    """One phase of a training run on one shard of cards, run by a Celery worker.

    The orchestrating step writes the input (pickled: fitted models, settings), a worker of
    the shard queue computes and writes the output back here; the database is the only
    thing both sides share (no result backend, no shared disk).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.CASCADE, related_name="shard_tasks"
    )
    phase = models.CharField(max_length=20)
    index = models.PositiveIntegerField()
    first_card_pk = models.PositiveBigIntegerField()
    last_card_pk = models.PositiveBigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    payload = models.BinaryField(help_text="pickled input of the phase")
    result = models.BinaryField(null=True, blank=True, help_text="pickled output")
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    peak_rss_mb = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "index"]

    def __str__(self) -> str:
        return f"{self.phase} shard {self.index} ({self.status})"


class DriftReport(models.Model):
    """How far the latest days' features and predictions moved from the training window
    (pipelines/drift.py): one per training run, and one per day of scoring."""

    class Kind(models.TextChoices):
        TRAINING = "training"
        SCORING = "scoring"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    training_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.CASCADE, related_name="drift_reports"
    )
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="drift_reports",
        help_text="the champion scored (scoring), or the version the run registered",
    )
    computed_at = models.DateTimeField(default=timezone.now)
    reference_start = models.DateField(null=True, blank=True)
    reference_end = models.DateField(null=True, blank=True)
    current_start = models.DateField(null=True, blank=True)
    current_end = models.DateField(null=True, blank=True)
    reference_rows = models.PositiveIntegerField(default=0)
    current_rows = models.PositiveIntegerField(default=0)
    reference_source = models.CharField(
        max_length=40, blank=True, help_text="where the reference rows came from"
    )
    threshold = models.FloatField(help_text="PSI above which a feature counts as drifted")
    features = models.JSONField(default=dict, blank=True, help_text="{feature: {psi, ks, drifted}}")
    drifted_features = models.JSONField(default=list, blank=True)
    drifted_count = models.PositiveSmallIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True, help_text="time the computation took")
    mlflow_run_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-computed_at"]
        indexes = [models.Index(fields=["kind", "-computed_at"], name="driftreport_kind_latest")]
        constraints = [
            # At most one scoring report per data day: a later scoring replaces it.
            models.UniqueConstraint(
                fields=["current_end"],
                condition=models.Q(kind="scoring"),
                name="driftreport_one_scoring_per_day",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} drift {self.current_start}…{self.current_end}"
