"""End-to-end training pipeline at scale: simulate N cards x D days, run the pipeline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m benchmarks.pipeline --cards 10000 --days 730

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379 \
        .venv/bin/python -m benchmarks.pipeline --cards 42000 --days 730 \
            --variants inline,workers1,workers2

Loads simulated prices into a scratch PostgreSQL database (``pokewatch_bench_pipeline``,
dropped afterwards), then runs ``manage.py run_pipeline`` in a child process with MLflow
and ZenML stores in a temporary folder, once per variant:

- ``inline``: the shards run one after the other in the pipeline's process (the default);
- ``workersN``: the shards run as Celery tasks on one ``celery worker`` with N processes
  on a shard queue of its own (needs ``REDIS_URL`` for the broker).

Reports the wall time of every step, the pipeline process's peak memory (max RSS) and, on
Celery, the largest peak of a shard worker process (recorded on each ShardTask).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from benchmarks._db import scratch_database, setup_django

ROOT = Path(__file__).resolve().parent.parent


def load(cards: int, days: int, end: date) -> int:
    """Simulated prices of ``cards`` sim- cards, 1,000 cards per transaction."""
    from prices.ingestion import upsert_prices
    from prices.sources.base import SourceCard
    from prices.sources.simulated import SimulatedSource

    infos = SimulatedSource(seed=7, extra_cards=cards).extra_card_infos()
    source = SimulatedSource(seed=7)
    rows = 0
    for first in range(0, cards, 1000):
        chunk = infos[first : first + 1000]
        batch = source.fetch(
            [SourceCard(i.card_id, category=i.category) for i in chunk], end=end, days=days
        )
        upsert_prices(batch.rows, source="simulated", new_cards=chunk)
        rows += len(batch.rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument("--variants", default="inline", help="inline,workers1,workers2,…")
    args = parser.parse_args()
    setup_django()

    from django.db import connection

    with scratch_database("pokewatch_bench_pipeline") as where:
        print(f"database: {where}")
        started = time.perf_counter()
        rows = load(args.cards, args.days, args.end)
        print(
            f"loaded {rows:,} prices of {args.cards:,} cards "
            f"in {time.perf_counter() - started:.0f} s"
        )
        db = connection.settings_dict
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        for variant in args.variants.split(","):
            run_variant(variant.strip(), url)


def run_variant(variant: str, url: str) -> None:
    from pipelines.models import ShardTask, TrainingRun

    with tempfile.TemporaryDirectory() as stores:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "POKEWATCH_VAR_DIR": stores,
            "ZENML_CONFIG_PATH": str(Path(stores) / "zenml"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{stores}/mlflow.db",
        }
        worker = None
        if variant.startswith("workers"):
            if not os.environ.get("REDIS_URL"):
                raise SystemExit("the workers variants need REDIS_URL (the Celery broker)")
            queue = f"pokewatch-bench-shards-{uuid.uuid4().hex[:8]}"
            env.update(POKEWATCH_SHARDS_ON_CELERY="1", POKEWATCH_SHARD_QUEUE=queue)
            worker = start_worker(env, queue, int(variant.removeprefix("workers")), Path(stores))
        try:
            started = time.perf_counter()
            output = Path(stores) / "run_pipeline.out"
            with output.open("wb") as out:
                child = subprocess.Popen(  # noqa: S603 (our own manage.py)
                    [sys.executable, "manage.py", "run_pipeline"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                _, status, usage = os.wait4(child.pid, 0)  # this child's own peak
            wall = time.perf_counter() - started
            peak_mb = usage.ru_maxrss / 1024
            text = output.read_text(errors="replace")
        finally:
            if worker is not None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=60)
    if os.waitstatus_to_exitcode(status) != 0:
        print(text[-5000:])
        raise SystemExit(f"pipeline failed ({variant})")
    run = TrainingRun.objects.latest("created_at")
    print(f"\n{variant}: {run.status}, wall {wall:.0f} s (process), peak RSS {peak_mb:,.0f} MB")
    for line in text.splitlines():
        if line.startswith("  ") and ("shard" in line or "prices of" in line):
            print(f"  {line.strip()}")
    for step, seconds in run.step_timings.items():
        print(f"  {step:<16} {seconds:8.1f} s")
    shards = ShardTask.objects.filter(run=run)
    if shards.exists():
        peaks = [t.peak_rss_mb for t in shards if t.peak_rss_mb]
        workers = {t.worker for t in shards}
        print(
            f"  shard tasks: {shards.count()} on {len(workers)} process(es), "
            f"largest worker peak {max(peaks):,.0f} MB"
        )
    published = run.candidate.predictions.count() if run.candidate else 0
    print(f"  predictions published: {published:,}")
    print(f"  reason: {run.reason}")


def start_worker(
    env: dict[str, str], queue: str, processes: int, folder: Path
) -> subprocess.Popen[bytes]:
    log = folder / "worker.log"
    worker = subprocess.Popen(  # noqa: S603 (celery from our own virtual environment)
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "pokewatch_site",
            "worker",
            "-Q",
            queue,
            "-c",
            str(processes),
            "-l",
            "info",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if time.monotonic() > deadline:
            raise SystemExit(f"the Celery worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    return worker


if __name__ == "__main__":
    main()
