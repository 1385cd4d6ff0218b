from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from pipelines.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)

_SHOWN = ("mape", "rmse", "buy_precision", "sell_precision", "signal_rate", "flip_rate", "coverage")


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "estimator",
        "is_champion",
        "trained_at",
        "promoted_at",
        "data_end",
        "mape",
    )
    list_filter = ("is_champion", "estimator")
    search_fields = ("registered_name", "registered_version", "mlflow_run_id")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False  # versions come from training runs only

    @admin.display(description="MAPE")
    def mape(self, obj: ModelVersion) -> str:
        return _fmt(obj.metrics.get("mape"))


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "trigger",
        "created_at",
        "duration",
        "promoted",
        "candidate",
        "short_reason",
    )
    list_filter = ("status", "trigger", "promoted")
    search_fields = ("reason", "error", "mlflow_run_id")
    readonly_fields = (
        "status",
        "trigger",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "duration",
        "timings",
        "metrics_vs_champion",
        "candidate",
        "promoted",
        "reason",
        "mlflow_run_id",
        "zenml_run_id",
        "task_id",
        "error",
    )
    exclude = ("step_timings", "metrics", "champion_metrics")

    def has_add_permission(self, request: Any) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("run/", wrap(require_POST(self.run_now)), name="pipelines_trainingrun_run"),
            path(
                "collect/",
                wrap(require_POST(self.collect_now)),
                name="pipelines_trainingrun_collect",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return super().changelist_view(
            request, {**(extra_context or {}), "schedule": beat_schedule()}
        )

    def run_now(self, request: HttpRequest) -> HttpResponse:
        from pipelines.tasks import enqueue_training

        if not self.has_change_permission(request):
            messages.error(request, "You may not start training runs.")
        else:
            run = enqueue_training(TrainingRun.Trigger.ADMIN)
            if run.status == TrainingRun.Status.SKIPPED:
                messages.warning(request, f"Run #{run.pk} {run.reason}")
            else:
                messages.success(request, f"Training run #{run.pk} queued.")
        return HttpResponseRedirect(reverse("admin:pipelines_trainingrun_changelist"))

    def collect_now(self, request: HttpRequest) -> HttpResponse:
        from pipelines.tasks import collect_prices_task

        if not self.has_change_permission(request):
            messages.error(request, "You may not start price collection.")
        else:
            try:
                result = collect_prices_task.delay(trigger="admin")
            except Exception as exc:  # broker unreachable or hung: bounded, never a 500
                logger.warning("could not queue price collection: %s: %s", type(exc).__name__, exc)
                messages.error(
                    request,
                    f"Price collection not queued: the Celery broker could not be reached "
                    f"({type(exc).__name__}). Try again once it answers, or run "
                    f"`manage.py collect_prices`.",
                )
            else:
                messages.success(request, f"Price collection queued (task {result.id}).")
        return HttpResponseRedirect(reverse("admin:pipelines_trainingrun_changelist"))

    @admin.display(description="duration")
    def duration(self, obj: TrainingRun) -> str:
        seconds = obj.duration_seconds
        return "—" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="outcome")
    def short_reason(self, obj: TrainingRun) -> str:
        text = obj.error or obj.reason
        return text if len(text) < 90 else text[:87] + "…"

    @admin.display(description="seconds per step")
    def timings(self, obj: TrainingRun) -> str:
        return format_html_join(
            "", "<div>{}: {} s</div>", ((k, f"{v:.2f}") for k, v in obj.step_timings.items())
        )

    @admin.display(description="metrics (walk-forward) beside the champion's")
    def metrics_vs_champion(self, obj: TrainingRun) -> str:
        estimators = (obj.metrics or {}).get("estimators", {})
        if not estimators:
            return "—"
        columns = [*estimators, "champion"]
        blocks = {**estimators, "champion": obj.champion_metrics or {}}
        header = format_html_join("", "<th>{}</th>", ((c,) for c in columns))
        rows = format_html_join(
            "",
            "<tr><th>{}</th>{}</tr>",
            (
                (
                    key,
                    format_html_join(
                        "", "<td>{}</td>", ((_fmt(blocks[c].get(key)),) for c in columns)
                    ),
                )
                for key in _SHOWN
            ),
        )
        return format_html(
            "<table><tr><th></th>{}</tr>{}</table><details><summary>JSON</summary>"
            "<pre>{}</pre></details>",
            header,
            rows,
            json.dumps(obj.metrics, indent=2),
        )


def beat_schedule() -> list[dict[str, Any]]:
    """The beat entries of settings, with when each fires next."""
    now = timezone.now()
    rows = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        schedule = entry["schedule"]
        fields = (
            schedule._orig_minute,
            schedule._orig_hour,
            schedule._orig_day_of_month,
            schedule._orig_month_of_year,
            schedule._orig_day_of_week,
        )
        rows.append(
            {
                "name": name,
                "task": entry["task"],
                "crontab": " ".join(str(f) for f in fields),
                "next_run": (
                    now + schedule.remaining_estimate(now) + timedelta(seconds=30)
                ).replace(second=0, microsecond=0),
            }
        )
    return rows
