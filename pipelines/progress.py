"""Per-step bookkeeping of a training run: timings, progress lines, what the gate said."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import reset_queries

from pipelines.gate import GateDecision
from pipelines.models import ModelVersion, TrainingRun
from pokewatch_site.metrics import CARDS_SCORED, TRAINING_STEP_SECONDS

logger = logging.getLogger("pipelines.progress")

#: Where progress lines go; ``run_pipeline`` points it at its stdout.
reporter: Callable[[str], None] = logger.info


def reporter_of() -> Callable[[str], None]:
    """A callable writing to wherever progress lines go when it is called."""
    return lambda line: reporter(line)


class StepRecord:
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id

    def _update(self, **fields: Any) -> None:
        if self.run_id:
            TrainingRun.objects.filter(pk=self.run_id).update(**fields)

    def gate(self, decision: GateDecision, backtest: dict[str, Any]) -> None:
        from pipelines.training import champion_metrics

        self._update(
            metrics=backtest,
            champion_metrics=champion_metrics(backtest) or {},
            reason=decision.reason,
        )
        reporter(("PASS " if decision.promote else "REJECT ") + decision.reason)

    def registered(self, mlflow_run_id: str, version: ModelVersion | None) -> None:
        self._update(mlflow_run_id=mlflow_run_id, candidate=version)

    def scored(self, cards: int) -> None:
        self._update(cards_scored=cards)
        CARDS_SCORED.labels(trigger="training").inc(cards)


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS between steps.

    Steps pass multi-GB frames along; without this, glibc keeps every freed arena and the
    process's peak grows with each step instead of being the largest single step.
    With DEBUG on, Django also keeps the last 9,000 queries of each connection, some of
    them megabytes long (arrays of card ids): a long run drops them here.
    """
    reset_queries()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextmanager
def step_timer(run_id: int, name: str) -> Iterator[StepRecord]:
    reporter(f"[{name}] started")
    started = time.perf_counter()
    record = StepRecord(run_id)
    try:
        yield record
    except Exception as exc:
        # ZenML re-raises only "step X failed"; keep the real cause on the run.
        record._update(error=f"{name}: {type(exc).__name__}: {exc}"[:10_000])
        raise
    finally:
        release_memory()
        seconds = round(time.perf_counter() - started, 3)
        TRAINING_STEP_SECONDS.labels(step=name).observe(seconds)
        if run_id:
            run = TrainingRun.objects.filter(pk=run_id).only("step_timings").first()
            if run is not None:
                run.step_timings = {**run.step_timings, name: seconds}
                run.save(update_fields=["step_timings"])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        reporter(f"[{name}] finished in {seconds:.1f} s (peak memory so far {peak:,.0f} MB)")
