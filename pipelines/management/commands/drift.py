from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from pipelines.drift import report_payload, scoring_report
from pipelines.models import DriftReport
from pokewatch_site.commands import PokeWatchCommand


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


class Command(PokeWatchCommand):
    help = (
        "Show the latest drift report of each kind (training, scoring): PSI and KS of every "
        "feature and of the predictions against the training window; --compute computes "
        "today's scoring report first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--compute",
            action="store_true",
            help="compute the champion's drift on the latest days now (replaces that day's)",
        )
        parser.add_argument("--json", action="store_true", help="print the reports as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["compute"]:
            computed = scoring_report(force=True)
            if computed is None and not options["json"]:
                self.stdout.write(
                    "nothing to compare: no champion with a data window, or no prices"
                )
        reports = [
            report
            for kind in DriftReport.Kind.values
            if (
                report := DriftReport.objects.filter(kind=kind)
                .select_related("model_version", "training_run")
                .order_by("-computed_at")
                .first()
            )
            is not None
        ]
        if options["json"]:
            payload = [
                {
                    "id": r.pk,
                    "model_version": r.model_version.label if r.model_version else None,
                    "training_run": r.training_run_id,
                    "mlflow_run_id": r.mlflow_run_id,
                    **report_payload(r),
                }
                for r in reports
            ]
            self.stdout.write(json.dumps(payload, indent=2))
            return
        if not reports:
            self.stdout.write(
                "no drift report yet: training runs and each day's scoring write them"
            )
        for report in reports:
            self._show(report)

    def _show(self, report: DriftReport) -> None:
        source = []
        if report.training_run_id:
            source.append(f"run #{report.training_run_id}")
        if report.model_version:
            source.append(str(report.model_version))
        self.stdout.write(
            f"{report.kind} drift #{report.pk}, computed {report.computed_at:%Y-%m-%d %H:%M} UTC"
            + (f" [{', '.join(source)}]" if source else "")
            + f": {report.drifted_count} of {len(report.features)} drifted at PSI > "
            f"{report.threshold:g}"
        )
        self.stdout.write(
            f"  current {report.current_start} … {report.current_end} "
            f"({report.current_rows:,} rows) against {report.reference_start} … "
            f"{report.reference_end} ({report.reference_rows:,} rows, {report.reference_source})"
        )
        width = max((len(name) for name in report.features), default=7)
        self.stdout.write(f"  {'feature':<{width}}  {'PSI':>8}  {'KS':>8}")
        rows = sorted(
            report.features.items(),
            key=lambda item: (item[1].get("psi") is None, -(item[1].get("psi") or 0.0)),
        )
        for name, values in rows:
            flag = "  drifted" if values.get("drifted") else ""
            self.stdout.write(
                f"  {name:<{width}}  {_number(values.get('psi')):>8}  "
                f"{_number(values.get('ks')):>8}{flag}"
            )
