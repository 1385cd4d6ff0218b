from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from pipelines import progress
from pipelines.models import TrainingRun
from pipelines.runs import run_training
from pokewatch_site.commands import PokeWatchCommand


class Command(PokeWatchCommand):
    help = (
        "Run the training pipeline now (load → features → train → evaluate → gate → "
        "register → publish) and print the outcome; exits non-zero if the run failed or "
        "was skipped. With --async, queue it on the Celery worker and print the run id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--async", dest="run_async", action="store_true", help="queue it on the worker"
        )
        parser.add_argument(
            "--trigger",
            choices=TrainingRun.Trigger.values,
            default=TrainingRun.Trigger.COMMAND,
            help="what the run is recorded as started by (the admin's Training runs show it; "
            "default: command)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["run_async"]:
            from pipelines.tasks import enqueue_training

            run = enqueue_training(options["trigger"])
            if run.status == TrainingRun.Status.SKIPPED:
                raise CommandError(f"run #{run.pk} {run.reason}")
            self.stdout.write(f"queued training run #{run.pk}")
            self.stdout.write(str(run.pk))
            return
        progress.reporter = lambda line: self.stdout.write(line)
        try:
            run = run_training(trigger=options["trigger"])
        finally:
            progress.reporter = progress.logger.info
        if run.status == TrainingRun.Status.SKIPPED:
            raise CommandError(f"run #{run.pk} {run.reason}")
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in run.step_timings.items())
        self.stdout.write(f"run #{run.pk}: {run.status} in {run.duration_seconds or 0:.1f} s")
        if timings:
            self.stdout.write(f"steps: {timings}")
        if run.status == TrainingRun.Status.FAILED:
            raise CommandError(f"training run #{run.pk} failed: {run.error}")
        if run.promoted:
            self.stdout.write(self.style.SUCCESS(f"promoted {run.candidate}: {run.reason}"))
        else:
            self.stdout.write(self.style.WARNING(f"not promoted: {run.reason}"))
