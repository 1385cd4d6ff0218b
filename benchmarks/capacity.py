"""Capacity figures: PostgreSQL bytes per row and Redis bytes per cached entry, scaled up.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python -m benchmarks.capacity --cards 5000 --days 60

What docs/scaling.md needs and the other benchmarks do not measure. Everything happens in
a scratch PostgreSQL database (``pokewatch_bench_capacity_<pid>``, dropped afterwards)
and under a Redis key prefix of its own (``pw<pid>``: as long as production's
``pokewatch``, so the key sizes are production's) in the cache and rate-limit DBs that
the settings derive from REDIS_URL (N+1 and N+2); those keys are deleted afterwards,
nothing is flushed.

PostgreSQL, per row, heap + TOAST (``pg_table_size``) and indexes (``pg_indexes_size``):

- ``prices_pricepoint``: ``cards x days`` prices written one day of every card at a time,
  as the daily collection writes them (:func:`benchmarks.prices_table.fill`), card ids
  renamed to tcgcsv's ``tcgplayer-<product>-<printing>`` form;
- ``prices_prediction``: a ``last_price`` champion with a band, published through
  ``pipelines.publishing.publish`` (``COPY``, track record, champion flip, pruning of
  the other versions), once per ``--nights``: each night's version replaces the last,
  as the nightly training does, with a plain ``VACUUM`` after each (autovacuum's part),
  so the last figure is the size per live row with the nightly churn (a whole window
  deleted and rewritten) included;
- ``prices_signalrecord``: the track record those publishes write (every day is out of
  sample, so every (card, day) is recorded once), graded by ``track_record.grade``;
- ``pipelines_shardtask``: the pickled training sample one shard returns
  (``sharding.phase_sample``), stored as a ``ShardTask`` result (what the pipeline keeps
  per run with ``POKEWATCH_SHARDS_ON_CELERY``);
- WAL written per row: by ``upsert_prices`` for one more day of every card, and by one
  nightly publish. The WAL position is the server's, so other databases' writes count
  too: the best (least) of the runs is reported.

Redis, on the real code path (the Django WSGI application called in this process with an
``X-API-Key``, as :mod:`benchmarks.api_inprocess` does), ``MEMORY USAGE`` of each key the
reads leave (exact, whoever else uses the server) and the change of ``INFO memory``'s
``used_memory`` per entry. ``INFO``'s figures (memory, CPU, command counts) are the whole
server's: point REDIS_URL at a Redis of its own (``redis-server --port 6391 --save ''``)
for clean ones.

- a cached prediction: ``GET /api/v1/cards/{id}/fair-price/`` for every card (the
  latest), then with ``?date=`` a random day of the window;
- an API key: ``--keys`` keys, one ``GET /bench/keyed/`` each (first, on a quiet server):
  the key's version token, cached row and last-used gate (``accounts.keys``) on the cache
  DB and its rate-limit counter (django-ratelimit, one per key per group per window) on
  the counters DB; then deleted, and what that frees;
- ``signals/``: one cached answer holds every card of the day;
- per cached read (hits): Redis round trips (counted in the client), commands and their
  execution time (``INFO commandstats``) and Redis server CPU (``INFO cpu``: commands plus
  the network's system calls), from one process, then from ``--clients`` processes at
  once (Redis then serves several connections per wake-up, as it does for a web tier).

Last, the figures scaled to ``--catalog`` priced cards a day (~41,600: one day of tcgcsv's
whole Pokémon category, docs/benchmarks.md) and a year, the serving and track-record
windows (``POKEWATCH_SERVING_WINDOW_DAYS``, ``POKEWATCH_TRACK_RECORD_DAYS``) and the
training sample cap (``TRAIN_ROWS_CAP``).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from benchmarks.api_inprocess import get

MB = 2**20
GB = 2**30
GROWING_TABLES = (
    "prices_pricepoint",
    "prices_prediction",
    "prices_signalrecord",
    "pipelines_shardtask",
    "prices_card",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=5000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument("--nights", type=int, default=4, help="publishes, each replacing the last")
    parser.add_argument("--keys", type=int, default=500, help="API keys for the per-key figures")
    parser.add_argument(
        "--clients", type=int, default=4, help="processes reading at once (Redis CPU per read)"
    )
    parser.add_argument(
        "--catalog", type=int, default=41_600, help="priced cards a day, for the projections"
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit("DATABASE_URL must point at PostgreSQL (the scratch DB is made there)")
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL must point at Redis (cache and rate-limit counters)")
    prefix = f"pw{os.getpid():07d}"  # as long as production's KEY_PREFIX, "pokewatch"
    os.environ["POKEWATCH_BENCH_CACHE_PREFIX"] = prefix
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_settings"
    os.environ.update(DEBUG="0", ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0")
    os.environ.setdefault("SECRET_KEY", "capacity-benchmark-" + "k" * 40)

    import django

    django.setup()
    from django.conf import settings

    from benchmarks._db import scratch_database

    print(
        f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; {args.cards:,} cards x "
        f"{args.days} days; Redis cache DB {settings.REDIS_CACHE_DB}, counters DB "
        f"{settings.REDIS_RATELIMIT_DB}, key prefix {prefix}"
    )
    with scratch_database(f"pokewatch_bench_capacity_{os.getpid()}") as where:
        print(f"database: {where}")
        try:
            figures = postgres_figures(args)
            figures.update(redis_figures(args, prefix))
        finally:
            from benchmarks.api import _cleanup_cache
            from prices import caching

            caching.flush_counts()  # now, not by its timer after the clean-up
            _cleanup_cache()
    project(figures, args)


# --- PostgreSQL ----------------------------------------------------------------------------


def postgres_figures(args: argparse.Namespace) -> dict[str, float]:
    from django.db import connection

    from benchmarks.prices_table import fill

    figures: dict[str, float] = {}
    print("\n== PostgreSQL ==")
    started = time.perf_counter()
    fill(args.cards, args.days, args.end)
    with connection.cursor() as cursor:  # tcgcsv's ids: their length is in every cache key
        cursor.execute(
            "UPDATE prices_card SET card_id = 'tcgplayer-' || (480000 + id) || '-holofoil', "
            "name = 'Simulated card ' || id, set_name = 'Simulated set'"
        )
        cursor.execute("VACUUM FULL ANALYZE prices_card")
    print(f"filled {args.cards:,} x {args.days} prices in {time.perf_counter() - started:.0f} s")
    table_sizes("prices_pricepoint", "prices", figures)
    table_sizes("prices_card", "card", figures)

    figures.update(publish_nights(args))
    figures.update(grade_track_record(args))
    figures.update(training_sample())
    figures.update(ingestion_wal(args))
    print("every table of the scratch database over 1 MB:")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables "
            "WHERE pg_total_relation_size(relid) > 1048576 "
            "ORDER BY pg_total_relation_size(relid) DESC"
        )
        for name, size in cursor.fetchall():
            cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608  # nosec B608: a table
            rows = cursor.fetchone()[0]
            print(f"  {name:<32} {rows:>12,} rows {size / MB:10.1f} MB")
    return figures


def table_sizes(table: str, label: str, figures: dict[str, float]) -> dict[str, float]:
    """Rows, heap + TOAST, indexes and bytes per row of ``table`` (exact row count)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608  # nosec B608: a constant
        rows = cursor.fetchone()[0]
        cursor.execute(
            "SELECT pg_table_size(%s), pg_indexes_size(%s), pg_total_relation_size(%s)",
            [table, table, table],
        )
        heap, indexes, total = cursor.fetchone()
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) "
            "FROM pg_index WHERE indrelid = %s::regclass ORDER BY 2 DESC",
            [table],
        )
        each = cursor.fetchall()
    per = (lambda size: size / rows) if rows else (lambda size: 0.0)
    print(
        f"  {table} [{label}]: {rows:,} rows; table {heap / MB:.1f} MB ({per(heap):.1f} B/row), "
        f"indexes {indexes / MB:.1f} MB ({per(indexes):.1f} B/row), "
        f"total {total / MB:.1f} MB = {per(total):.1f} B/row"
    )
    for name, size in each:
        print(f"      {name:<48} {size / MB:8.1f} MB {per(size):6.1f} B/row")
    found = {
        f"{label}_rows": float(rows),
        f"{label}_table_b": per(heap),
        f"{label}_index_b": per(indexes),
        f"{label}_total_b": per(total),
    }
    figures.update(found)
    return found


def prediction_frame(end: date, days: int) -> Any:
    """A ``last_price`` baseline's predictions of every stored price, with a +-10 % band."""
    import numpy as np
    from django.conf import settings

    from pipelines.data import load_price_frame

    frame = load_price_frame(start=end - timedelta(days=days - 1), end=end)
    frame["card_id"] = frame["card_id"].astype(str)
    frame = frame.sort_values(["card_id", "date"]).reset_index(drop=True)
    previous = frame.groupby("card_id")["market_price"].shift(1)
    frame["fair_price"] = previous.fillna(frame["market_price"]).astype(float)
    frame["fair_low"] = frame["fair_price"] * 0.9
    frame["fair_high"] = frame["fair_price"] * 1.1
    frame["deviation"] = frame["market_price"].astype(float) / frame["fair_price"] - 1
    frame["signal"] = np.select(
        [
            frame["deviation"] <= -settings.POKEWATCH_BUY_THRESHOLD,
            frame["deviation"] >= settings.POKEWATCH_SELL_THRESHOLD,
        ],
        ["BUY", "SELL"],
        default="HOLD",
    )
    return frame[
        [
            "card_id",
            "date",
            "market_price",
            "fair_price",
            "fair_low",
            "fair_high",
            "deviation",
            "signal",
        ]
    ]


@contextmanager
def wal_bytes() -> Iterator[list[int]]:
    """WAL written meanwhile (the server's: other databases' writes count too)."""
    from django.db import connection

    written: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        before = cursor.fetchone()[0]
    yield written
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [before])
        written.append(int(cursor.fetchone()[0]))


def vacuum(table: str, full: bool = False) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {'(FULL, ANALYZE)' if full else '(ANALYZE)'} {table}")


def publish_nights(args: argparse.Namespace) -> dict[str, float]:
    """Publish ``--nights`` champions, each replacing the last, as the nightly run does."""
    from pipelines.models import ModelVersion
    from pipelines.publishing import publish

    frame = prediction_frame(args.end, args.days)
    first_day = args.end - timedelta(days=args.days - 1)
    figures: dict[str, float] = {}
    wal_per_row: list[float] = []
    print(f"publishing {len(frame):,} predictions a night, {args.nights} nights:")
    for night in range(1, args.nights + 1):
        version = ModelVersion.objects.create(
            registered_name="pokewatch-fair-value",
            registered_version=str(night),
            estimator="model",
            horizon=30,
            signal_rule="band",
            # Every day out of sample: the first publish records each (card, day) served.
            data_start=first_day - timedelta(days=365),
            data_end=first_day - timedelta(days=1),
        )
        started = time.perf_counter()
        with wal_bytes() as wal:
            result = publish(version, frame)
        seconds = time.perf_counter() - started
        vacuum("prices_prediction")
        vacuum("prices_signalrecord")
        print(
            f"  night {night}: wrote {result.written:,}, pruned {result.pruned:,} in "
            f"{seconds:.1f} s; WAL {wal[0] / MB:.0f} MB = {wal[0] / result.written:.0f} B per "
            "prediction written"
        )
        if night > 1:  # a night that also deletes the previous champion's window
            wal_per_row.append(wal[0] / result.written)
        label = "predictions_night1" if night == 1 else f"predictions_night{night}"
        found = table_sizes("prices_prediction", label, figures)
        if night == 1:
            figures["predictions_compact_b"] = found[f"{label}_total_b"]
            vacuum("prices_prediction", full=True)
            table_sizes("prices_prediction", "predictions_compacted", figures)
        figures["predictions_steady_b"] = found[f"{label}_total_b"]
        figures["predictions_steady_table_b"] = found[f"{label}_table_b"]
        figures["predictions_steady_index_b"] = found[f"{label}_index_b"]
    if wal_per_row:
        figures["publish_wal_b"] = min(wal_per_row)
        print(
            f"  WAL per prediction of a night that replaces a champion (least of "
            f"{len(wal_per_row)}): {min(wal_per_row):.0f} B"
        )
    return figures


def grade_track_record(args: argparse.Namespace) -> dict[str, float]:
    from pipelines import track_record

    started = time.perf_counter()
    result = track_record.grade(today=args.end + timedelta(days=1))
    seconds = time.perf_counter() - started
    print(
        f"graded the track record in {seconds:.0f} s "
        f"({1000 * seconds / max(result.graded, 1):.2f} ms per record): {result.summary()}"
    )
    vacuum("prices_signalrecord")
    figures: dict[str, float] = {"grade_ms": 1000 * seconds / max(result.graded, 1)}
    table_sizes("prices_signalrecord", "records", figures)
    vacuum("prices_signalrecord", full=True)
    table_sizes("prices_signalrecord", "records_compacted", figures)
    return figures


def training_sample() -> dict[str, float]:
    """The pickled training sample of the first shard, as a ShardTask keeps it."""
    from django.db import connection

    from pipelines import sharding
    from pipelines.models import ShardTask

    plan = sharding.make_plan()
    shard = plan.shards[0]
    started = time.perf_counter()
    result = sharding.phase_sample(shard, horizon=30, rate=plan.sample_rate, as_of=plan.last_day)
    blob = sharding._dump(result)
    rows = len(result[0])
    task = ShardTask.objects.create(
        phase="sample",
        index=shard.index,
        first_card_pk=shard.first_pk,
        last_card_pk=shard.last_pk,
        status=ShardTask.Status.DONE,
        payload=b"",
        result=blob,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_size(result) FROM pipelines_shardtask WHERE id = %s", [task.pk]
        )
        stored = cursor.fetchone()[0]
    print(
        f"training sample of {shard.label}: {rows:,} rows x {result[0].shape[1]} columns in "
        f"{time.perf_counter() - started:.0f} s; pickled {len(blob) / MB:.1f} MB = "
        f"{len(blob) / rows:.0f} B/row; stored (TOAST) {stored / MB:.1f} MB = "
        f"{stored / rows:.0f} B/row"
    )
    return {"sample_pickled_b": len(blob) / rows, "sample_stored_b": stored / rows}


def ingestion_wal(args: argparse.Namespace) -> dict[str, float]:
    """WAL per price of a day of every card through ``upsert_prices`` (committed)."""
    from decimal import Decimal

    from prices.ingestion import upsert_prices
    from prices.models import Card
    from prices.sources.base import PriceRow

    ids = list(Card.objects.order_by("pk").values_list("card_id", flat=True))
    per_row = []
    for extra in range(1, 4):
        day = args.end + timedelta(days=extra)
        rows = [PriceRow(card_id, day, Decimal(f"{random.uniform(5, 205):.2f}")) for card_id in ids]  # noqa: S311
        with wal_bytes() as wal:
            upsert_prices(rows, source="tcgcsv")
        per_row.append(wal[0] / len(rows))
    print(
        f"WAL per price ingested (upsert_prices, a day of {len(ids):,} cards, least of 3): "
        f"{min(per_row):.0f} B (runs: {', '.join(f'{b:.0f}' for b in per_row)})"
    )
    return {"ingest_wal_b": min(per_row)}


# --- Redis ---------------------------------------------------------------------------------


def redis_figures(args: argparse.Namespace, prefix: str) -> dict[str, float]:
    import redis
    from django.core.wsgi import get_wsgi_application
    from django_redis import get_redis_connection

    from accounts.keys import create_key
    from prices.models import Card, Prediction

    print("\n== Redis ==")
    app = get_wsgi_application()
    cache_db = get_redis_connection("default")
    counters_db = get_redis_connection("ratelimit")
    figures: dict[str, float] = {}
    card_ids = list(Card.objects.order_by("pk").values_list("card_id", flat=True))
    days = [d.isoformat() for d in Prediction.objects.values_list("date", flat=True).distinct()]
    _, reader = create_key("capacity", owner="benchmarks.capacity", rate="100000000/m")

    def read_all(paths: list[str]) -> None:
        for path in paths:
            get(app, path, reader)

    def measured(label: str, pattern: str, paths: list[str], db: Any = cache_db) -> None:
        before = used_memory(cache_db)
        read_all(paths)
        after = used_memory(cache_db)
        sizes = memory_usage(db, f"{prefix}:1:{pattern}")
        mean = statistics.fmean(sizes) if sizes else 0.0
        grown = after - before
        print(
            f"  {label}: {len(sizes):,} keys, MEMORY USAGE mean {mean:.0f} B (median "
            f"{statistics.median(sizes) if sizes else 0:.0f}); used_memory "
            f"+{grown / MB:.2f} MB = {grown / max(len(sizes), 1):.0f} B per key"
        )
        figures[f"{label}_b"] = mean
        figures[f"{label}_used_b"] = grown / max(len(sizes), 1)

    # API keys first, on a quiet server: K keys, one keyed request each.
    cache_before = used_memory(cache_db)
    keys = [
        create_key(f"capacity-{i}", owner="benchmarks.capacity", rate="100000000/m")[1]
        for i in range(args.keys)
    ]
    for raw in keys:
        get(app, "/bench/keyed/", raw)
    grown = used_memory(cache_db) - cache_before
    per_kind = {
        kind: memory_usage(cache_db, f"{prefix}:1:apikey:{kind}:*")
        for kind in ("version", "entry", "touched")
    }
    counters = memory_usage(counters_db, f"{prefix}:1:rl:*")
    for kind, sizes in per_kind.items():
        print(
            f"  apikey:{kind}: {len(sizes):,} keys, "
            f"MEMORY USAGE mean {statistics.fmean(sizes):.0f} B"
        )
    key_bytes = sum(statistics.fmean(s) for s in per_kind.values())
    print(
        f"  rate-limit counters: {len(counters):,} keys, MEMORY USAGE mean "
        f"{statistics.fmean(counters):.0f} B"
    )
    before = used_memory(cache_db)
    for db, pattern in ((cache_db, "apikey:*"), (counters_db, "rl:*")):
        doomed = list(scan(db, f"{prefix}:1:{pattern}"))
        for first in range(0, len(doomed), 1000):
            db.delete(*doomed[first : first + 1000])
    freed = before - used_memory(cache_db)
    print(
        f"  per API key in use: {key_bytes:.0f} B of cached key (MEMORY USAGE) + "
        f"{statistics.fmean(counters):.0f} B per counter (group and window); used_memory "
        f"+{grown / args.keys:.0f} B per key with its counter, deleting them freed "
        f"{freed / args.keys:.0f} B per key"
    )
    figures["apikey_b"] = key_bytes
    figures["counter_b"] = statistics.fmean(counters)
    figures["apikey_used_b"] = grown / args.keys

    fair = "/api/v1/cards/{}/fair-price/"
    read_all([fair.format(card_ids[0])])  # warm: imports, connections, the key's own entries
    measured("prediction_latest", "pred:fair:*:latest", [fair.format(c) for c in card_ids])
    dated = [f"{fair.format(c)}?date={random.choice(days)}" for c in card_ids]  # noqa: S311
    before_dated = set(scan(cache_db, f"{prefix}:1:pred:fair:*"))
    before = used_memory(cache_db)
    read_all(dated)
    after = used_memory(cache_db)
    new = [k for k in scan(cache_db, f"{prefix}:1:pred:fair:*") if k not in before_dated]
    sizes = [cache_db.memory_usage(k, samples=0) for k in new]
    print(
        f"  prediction_dated: {len(sizes):,} keys, MEMORY USAGE mean {statistics.fmean(sizes):.0f}"
        f" B; used_memory +{(after - before) / MB:.2f} MB = {(after - before) / len(sizes):.0f} B "
        "per key"
    )
    figures["prediction_dated_b"] = statistics.fmean(sizes)

    # Cached reads (hits): round trips counted in the client, Redis's CPU from INFO.
    trips: list[int] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        trips.append(1)
        send(self, command, check_health)

    hits = [fair.format(c) for c in card_ids] * 2
    print(f"  load average before the timed reads: {os.getloadavg()[0]:.2f}")
    commands_before = command_stats(cache_db)
    cpu_before = redis_cpu(cache_db)
    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        started = time.process_time()
        read_all(hits)
        client_cpu = time.process_time() - started
    finally:
        redis.connection.AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    server_cpu = redis_cpu(cache_db) - cpu_before
    commands = command_stats(cache_db)
    per_read = {
        name: (
            calls - commands_before.get(name, (0, 0))[0],
            usec - commands_before.get(name, (0, 0))[1],
        )
        for name, (calls, usec) in commands.items()
    }
    print(
        "  commands per cached read (INFO commandstats, server-wide): "
        + ", ".join(
            f"{name} {calls / len(hits):.2f} ({usec / max(calls, 1):.1f} us each)"
            for name, (calls, usec) in sorted(per_read.items())
            if calls >= len(hits) / 2
        )
        + f"; {sum(u for _, u in per_read.values()) / len(hits):.1f} us of command execution"
    )
    print(
        f"  cached fair-price reads: {len(hits):,}; {len(trips) / len(hits):.2f} Redis round trips "
        f"and {1e6 * server_cpu / len(hits):.0f} us of Redis CPU (INFO cpu, server-wide) per "
        f"read; this process {1e3 * client_cpu / len(hits):.3f} ms CPU per read"
    )
    figures["trips_per_read"] = len(trips) / len(hits)
    figures["redis_cpu_us"] = 1e6 * server_cpu / len(hits)
    figures["redis_cpu_concurrent_us"] = concurrent_hits(
        cache_db, lambda: read_all(hits), len(hits), args.clients
    )

    # Deleting the prediction entries: what used_memory gives back per entry.
    entries = list(scan(cache_db, f"{prefix}:1:pred:fair:*"))
    before = used_memory(cache_db)
    for first in range(0, len(entries), 1000):
        cache_db.delete(*entries[first : first + 1000])
    freed = before - used_memory(cache_db)
    print(f"  deleting {len(entries):,} prediction entries freed {freed / len(entries):.0f} B each")
    figures["prediction_freed_b"] = freed / len(entries)

    # signals/: one entry for every card of the day.
    started = time.perf_counter()
    get(app, "/api/v1/signals/", reader)
    miss = time.perf_counter() - started
    started = time.perf_counter()
    body = get(app, "/api/v1/signals/", reader)
    hit = time.perf_counter() - started
    signals = memory_usage(cache_db, f"{prefix}:1:pred:signals:*")
    print(
        f"  signals/ (every card of the latest day, {len(card_ids):,}): one entry of "
        f"{signals[0] / MB:.2f} MB = {signals[0] / len(card_ids):.0f} B per card; response "
        f"{len(body) / MB:.2f} MB; first read {miss * 1000:.0f} ms, cached read "
        f"{hit * 1000:.0f} ms (in process)"
    )
    figures["signals_per_card_b"] = signals[0] / len(card_ids)
    figures["signals_hit_ms"] = hit * 1000

    return figures


def concurrent_hits(cache_db: Any, read: Callable[[], None], reads: int, clients: int) -> float:
    """Redis CPU per cached read with ``clients`` processes reading at once (forked)."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # each child opens its own (redis-py's pools reset after fork)
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=read) for _ in range(clients)]
    cpu_before = redis_cpu(cache_db)
    started = time.perf_counter()
    for child in children:
        child.start()
    for child in children:
        child.join()
    seconds = time.perf_counter() - started
    server_cpu = redis_cpu(cache_db) - cpu_before
    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    if any(child.exitcode for child in children):
        raise SystemExit("a reading process failed")
    total = reads * clients
    print(
        f"  cached fair-price reads by {clients} processes at once: {total:,} in {seconds:.1f} s "
        f"({total / seconds:,.0f}/s); {1e6 * server_cpu / total:.0f} us of Redis CPU per read"
    )
    return 1e6 * server_cpu / total


def scan(db: Any, pattern: str) -> Iterator[bytes]:
    yield from db.scan_iter(match=pattern, count=1000)


def memory_usage(db: Any, pattern: str) -> list[int]:
    return [int(db.memory_usage(key, samples=0)) for key in scan(db, pattern)]


def command_stats(db: Any) -> dict[str, tuple[int, int]]:
    """``{command: (calls, usec)}`` of the server so far (INFO commandstats)."""
    return {
        name.removeprefix("cmdstat_"): (int(stat["calls"]), int(stat["usec"]))
        for name, stat in db.info("commandstats").items()
    }


def used_memory(db: Any) -> int:
    return int(db.info("memory")["used_memory"])


def redis_cpu(db: Any) -> float:
    info = db.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# --- Projections -------------------------------------------------------------------------------


def project(f: dict[str, float], args: argparse.Namespace) -> None:
    from django.conf import settings

    from pipelines.evaluation import TRAIN_ROWS_CAP

    n = args.catalog
    serving = settings.POKEWATCH_SERVING_WINDOW_DAYS
    track = settings.POKEWATCH_TRACK_RECORD_DAYS

    def line(label: str, rows: float, per_row: float) -> None:
        print(
            f"  {label:<58} {rows / 1e6:7.2f} M x {per_row:5.0f} B = {rows * per_row / GB:6.2f} GB"
        )

    print(f"\n== Scaled to {n:,} priced cards a day ==")
    print("PostgreSQL:")
    line("prices, per year (grows forever)", n * 365, f["prices_total_b"])
    line("  of which table", n * 365, f["prices_table_b"])
    line("  of which indexes", n * 365, f["prices_index_b"])
    line(
        f"predictions, {serving}-day window, after the nightly churn",
        n * serving,
        f["predictions_steady_b"],
    )
    line(
        f"predictions, {serving}-day window, freshly written",
        n * serving,
        f["predictions_compact_b"],
    )
    line(f"track record, {track}-day window", n * track, f["records_total_b"])
    print(f"  grading a day of the track record: {n * f['grade_ms'] / 1000:.0f} s")
    line(
        "training sample kept per run (ShardTask, on Celery)", TRAIN_ROWS_CAP, f["sample_stored_b"]
    )
    line("WAL of a day's collection", n, f["ingest_wal_b"])
    if "publish_wal_b" in f:
        line("WAL of a nightly publish (the whole window)", n * serving, f["publish_wal_b"])
    print("Redis:")
    line("cached latest prediction of every card", n, f["prediction_latest_b"])
    line("signals/ of a day (one entry)", n, f["signals_per_card_b"])
    print(
        f"  a cached signals/ read of the whole catalog: "
        f"~{n * f['signals_hit_ms'] / args.cards:.0f} ms in process (linear in the cards)"
    )
    for keys in (100, 1000, 10_000):
        print(
            f"  {keys:>6,} keys in use: {keys * f['apikey_b'] / MB:6.2f} MB of key entries "
            f"+ {keys * f['counter_b'] * 3 / MB:6.2f} MB of counters (3 groups)"
        )


if __name__ == "__main__":
    main()
