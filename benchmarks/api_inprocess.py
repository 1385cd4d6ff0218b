"""Where an API request's time goes, without HTTP: the WSGI app called in this process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379 \\
        .venv/bin/python -m benchmarks.api_inprocess [--requests 4000] [--profile]

Loads the same data as :mod:`benchmarks.api` (500 simulated cards x 60 days, a published
``last_price`` champion, a key with a rate no run reaches) into a scratch database
(``pokewatch_bench_inprocess``, dropped afterwards), then calls the Django WSGI
application directly for each target (:data:`benchmarks.api.TARGETS`) and prints, per
request: CPU time of this process, Redis round trips (writes to any Redis connection;
a pipeline is one) and SQL queries. Each target is warmed first (the prediction cache
is filled), so ``fair-price`` measures cache hits. ``--profile`` prints cProfile's top
functions of the ``fair-price`` target.

This measures the Python side only: gunicorn, the kernel, Redis and PostgreSQL are not
in the figures (:mod:`benchmarks.api` measures the whole machine).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import time
from datetime import date
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per target")
    parser.add_argument("--profile", action="store_true", help="cProfile the fair-price target")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit("DATABASE_URL must point at PostgreSQL (the scratch DB is made there)")
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL must point at Redis (cache and rate-limit counters)")
    os.environ["POKEWATCH_BENCH_CACHE_PREFIX"] = f"pokewatch-bench-{os.getpid()}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_settings"
    os.environ.update(DEBUG="0", ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0")
    os.environ.setdefault("SECRET_KEY", "in-process-benchmark-" + "k" * 40)

    import django

    django.setup()
    import redis
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from benchmarks._db import scratch_database
    from benchmarks.api import TARGETS, _cleanup_cache, _create_key, _load_data, _paths

    app = get_wsgi_application()
    trips: list[int] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        trips.append(1)
        send(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]

    with scratch_database("pokewatch_bench_inprocess"):
        card_ids, pairs = _load_data(500, 60, date(2026, 6, 30))
        raw_key = _create_key()
        print(f"python {sys.version.split()[0]}; {args.requests:,} requests per target")
        print(f"{'target':18} {'CPU ms':>7} {'Redis trips':>11} {'SQL queries':>11}")
        for name, template in TARGETS.items():
            paths = _paths(template, card_ids, pairs)
            for path in paths[:2000]:  # warm: imports, connections, the prediction cache
                get(app, path, raw_key)
            chosen = [random.choice(paths) for _ in range(args.requests)]  # noqa: S311
            profile = cProfile.Profile() if args.profile and name == "fair-price" else None
            trips.clear()
            with CaptureQueriesContext(connection) as queries:
                if profile:
                    profile.enable()
                started = time.process_time()
                for path in chosen:
                    get(app, path, raw_key)
                cpu = time.process_time() - started
                if profile:
                    profile.disable()
            n = len(chosen)
            print(
                f"{name:18} {1000 * cpu / n:7.3f} {len(trips) / n:11.2f} "
                f"{len(queries.captured_queries) / n:11.2f}"
            )
            if profile:
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        _cleanup_cache()


def get(app: Any, path: str, raw_key: str) -> bytes:
    """The body of a keyed GET of ``path`` from the WSGI ``app`` (200, or exit); also
    used by :mod:`benchmarks.capacity`."""
    path_info, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_X_API_KEY": raw_key,
        "HTTP_ACCEPT": "application/json",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
    }
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, *a: status.append(s)))
    if not status[0].startswith("200"):
        raise SystemExit(f"{path}: {status[0]}: {body[:200]!r}")
    return body


if __name__ == "__main__":
    main()
