"""End-to-end training pipeline at scale: simulate N cards x D days, run the pipeline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m benchmarks.pipeline --cards 10000 --days 730

Loads simulated prices into a scratch PostgreSQL database (``pokewatch_bench_pipeline``,
dropped afterwards), then runs ``manage.py run_pipeline`` in a child process with MLflow
and ZenML stores in a temporary folder, and reports the wall time of every step and the
child's peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks._db import scratch_database, setup_django

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 6, 30))
    args = parser.parse_args()
    setup_django()

    from django.db import connection

    from pipelines.models import TrainingRun
    from prices.ingestion import upsert_prices
    from prices.sources.simulated import SimulatedSource

    with scratch_database("pokewatch_bench_pipeline") as where:
        print(f"database: {where}")
        started = time.perf_counter()
        rows = 0
        for first in range(0, args.cards, 1000):
            count = min(1000, args.cards - first)
            source = SimulatedSource(seed=7, extra_cards=first + count)
            infos = source.extra_card_infos()[first:]
            batch = source.fetch([], end=args.end, days=args.days)
            mine = {info.card_id for info in infos}
            chunk = [r for r in batch.rows if r.card_id in mine]
            upsert_prices(chunk, source="simulated", new_cards=infos)
            rows += len(chunk)
        seconds = time.perf_counter() - started
        print(f"loaded {rows:,} prices of {args.cards:,} cards in {seconds:.0f} s")

        settings_dict = connection.settings_dict
        url = (
            f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}"
            f"/{settings_dict['NAME']}"
        )
        with tempfile.TemporaryDirectory() as stores:
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "POKEWATCH_VAR_DIR": stores,
                "ZENML_CONFIG_PATH": str(Path(stores) / "zenml"),
            }
            env.pop("MLFLOW_TRACKING_URI", None)
            started = time.perf_counter()
            result = subprocess.run(  # noqa: S603 (our own manage.py)
                [sys.executable, "manage.py", "run_pipeline"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - started
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:])
            raise SystemExit("pipeline failed")
        for line in result.stdout.splitlines():
            if line.startswith("["):
                print(f"  {line}")
        run = TrainingRun.objects.latest("created_at")
        print(
            f"run_pipeline: {run.status}, wall {wall:.0f} s (process), peak RSS {peak_mb:,.0f} MB"
        )
        for step, seconds in run.step_timings.items():
            print(f"  {step:<16} {seconds:8.1f} s")
        published = run.candidate.predictions.count() if run.candidate else 0
        print(f"  predictions published: {published:,}")
        print(f"  reason: {run.reason}")


if __name__ == "__main__":
    main()
