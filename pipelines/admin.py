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

from pipelines.models import DriftReport, ModelVersion, TrainingRun

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
        "worker",
        "retry_of",
        "duration",
        "timings",
        "cards_scored",
        "metrics_vs_champion",
        "candidate",
        "promoted",
        "reason",
        "mlflow_run_id",
        "zenml_run_id",
        "task_id",
        "error",
        "drift",
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

    @admin.display(description="drift of the latest days against the training sample")
    def drift(self, obj: TrainingRun) -> str:
        report = obj.drift_reports.order_by("-computed_at").first()
        if report is None:
            return "—"
        link = reverse("admin:pipelines_driftreport_change", args=[report.pk])
        return format_html(
            '<p>{} <a href="{}">report #{}</a></p>{}',
            _drift_summary(report),
            link,
            report.pk,
            drift_table(report),
        )


def _drift_summary(report: DriftReport) -> str:
    drifted = ", ".join(report.drifted_features) or "none"
    return (
        f"{report.drifted_count} of {len(report.features)} drifted ({drifted}) at PSI > "
        f"{report.threshold:g}; current {report.current_start} … {report.current_end} "
        f"({report.current_rows:,} rows) against {report.reference_start} … "
        f"{report.reference_end} ({report.reference_rows:,} rows, {report.reference_source})."
    )


#: How a drifted feature's row stands out (inline styles: the CSP allows them).
_DRIFTED_STYLE = "background:#fde2e1;color:#a40000;font-weight:bold"


def drift_table(report: DriftReport) -> str:
    """Feature, PSI, KS and drifted, the largest PSI first; drifted rows highlighted."""
    order = sorted(
        report.features.items(),
        key=lambda item: (item[1].get("psi") is None, -(item[1].get("psi") or 0.0)),
    )
    rows = format_html_join(
        "",
        '<tr style="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                _DRIFTED_STYLE if values.get("drifted") else "",
                feature,
                _fmt(values.get("psi")),
                _fmt(values.get("ks")),
                "drifted" if values.get("drifted") else "—",
            )
            for feature, values in order
        ),
    )
    return format_html(
        '<table class="drift"><thead><tr><th>feature</th><th>PSI</th><th>KS</th>'
        "<th>drifted</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


@admin.register(DriftReport)
class DriftReportAdmin(admin.ModelAdmin):
    """Drift reports of training runs and of each day's scoring (pipelines/drift.py)."""

    list_display = (
        "id",
        "kind",
        "computed",
        "reference_window",
        "current_window",
        "drifted",
        "of",
    )
    list_filter = ("kind",)
    list_select_related = ("model_version", "training_run")
    date_hierarchy = "computed_at"
    fields = (
        "kind",
        "computed_at",
        "summary",
        "per_feature",
        "training_run",
        "model_version",
        "reference_window",
        "reference_rows",
        "reference_source",
        "current_window",
        "current_rows",
        "threshold",
        "seconds",
        "mlflow_run_id",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # reports come from training runs and scoring only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="computed", ordering="computed_at")
    def computed(self, obj: DriftReport) -> str:
        return f"{obj.computed_at:%Y-%m-%d %H:%M}"

    @admin.display(description="reference")
    def reference_window(self, obj: DriftReport) -> str:
        return f"{obj.reference_start} … {obj.reference_end}"

    @admin.display(description="current")
    def current_window(self, obj: DriftReport) -> str:
        return f"{obj.current_start} … {obj.current_end}"

    @admin.display(description="drifted", ordering="drifted_count")
    def drifted(self, obj: DriftReport) -> str:
        return f"{obj.drifted_count} of {len(obj.features)}"

    @admin.display(description="run, version")
    def of(self, obj: DriftReport) -> str:
        """The run (training) and the version (registered, or the champion scored), briefly:
        the list stays narrow."""
        parts = [f"#{obj.training_run_id}"] if obj.training_run_id else []
        version = obj.model_version
        if version is not None:
            parts.append(f"v{version.registered_version}" if version.registered_version else "—")
        return " ".join(parts) or "—"

    @admin.display(description="summary")
    def summary(self, obj: DriftReport) -> str:
        return _drift_summary(obj)

    @admin.display(description="per feature")
    def per_feature(self, obj: DriftReport) -> str:
        return drift_table(obj)


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
