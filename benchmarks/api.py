"""API latency and throughput: the keyed fair-price endpoint against a bare Django app.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379 \\
        .venv/bin/python -m benchmarks.api

Loads N cards x D days of simulated prices and a published baseline champion
(``last_price``) into a scratch PostgreSQL database (``pokewatch_bench_api_<pid>``, so
that two runs never share one; dropped afterwards), creates an API key with a huge rate
(so the real rate-limit code runs but never refuses), and starts two gunicorn servers on
127.0.0.1 with the production configuration (``config/gunicorn.conf.py``, its access log
off) and the same workers, threads and worker class, DEBUG off:

* the project: ``benchmarks.bench_settings`` (the real settings plus the ``/bench/...``
  views of :mod:`benchmarks.bench_urls`);
* the bare app: ``benchmarks.bare_settings``, one ``JsonResponse`` view
  (:mod:`benchmarks.bare_urls`) behind Django's ``SecurityMiddleware`` and
  ``CommonMiddleware`` only: the framework's own limit on this machine, so everything
  the project adds, its middleware included, counts against the project.

Then it drives each target with the same ``wrk`` command (``-t2 -c32``) and prints
requests/s, p50 and p99:

* ``bare``: the bare app's view (the reference of the targets below);
* ``trivial``: a plain Django ``JsonResponse`` in the project (gunicorn + the project's
  middleware + URL resolver);
* ``trivial-drf``: the same through a DRF ``APIView`` without auth;
* ``keyed``: a DRF view with the real key authentication and rate limit, constant body;
* ``fair-price``: ``GET /api/v1/cards/{random card}/fair-price/`` with ``X-API-Key``;
  the warm-up, which starts from an empty prediction cache, has filled it;
* ``fair-price-dated``: the same with ``?date=`` a random day of the window: N x D keys,
  so far more misses (the database path).

``bare`` and ``fair-price`` are measured interleaved, so that whatever else loads the
machine hits both: ``bare, fair-price, bare, fair-price, bare`` (``--rounds`` fair-price
runs, each between two bare runs, every run reported). The summary gives each round's
fair-price requests/s as a share of the mean of the bare runs around it, the fair-price
p99, and whether the targets (>= 60 % of bare, p99 <= 25 ms at 32 connections) are met.

Gunicorn runs the production configuration: 4 workers of
:class:`pokewatch_site.gunicorn_worker.BalancedThreadWorker` (gthread) with 2 threads
(the best of the configurations compared in docs/benchmarks.md on 2 cores); ``--workers``,
``--worker-class``, ``--threads``, ``--duration``, ``--connections``, ``--rounds`` and
``--targets`` change the run (for both servers), ``--rate N`` paces the connections to
offer about N requests/s in all (latency below capacity instead of throughput),
``--profile FILE`` records a py-spy profile of the project's workers during an extra
fair-price run after the measured ones (not counted) and prints where that time went, by
module group and by function. Each run also reports how the machine's CPU time was
shared (benchmark, PostgreSQL + Redis, other processes; on a shared machine, runs where
other processes took more than a few percent are not comparable) and each gunicorn
worker's share.

Redis keys are written under a prefix of their own (``pokewatch-bench-<pid>``, deleted
afterwards) in the project's cache/rate-limit DBs (``REDIS_CACHE_DB``,
``REDIS_RATELIMIT_DB``); nothing is flushed. Needs ``wrk`` (``apt-get install wrk``) and
both DATABASE_URL (PostgreSQL) and REDIS_URL. Exits non-zero if any request failed
(socket error or non-2xx); missed targets are reported, not failed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "benchmarks.bench_settings"
APP = "pokewatch_site.wsgi:application"
FAIR_PRICE = "/api/v1/cards/{card_id}/fair-price/"
# The bare Django app: its own settings, Django's WSGI handler (no project module).
BARE_SETTINGS = "benchmarks.bare_settings"
BARE_APP = "django.core.wsgi:get_wsgi_application()"
BARE = "bare"
BARE_PATH = "/bench/bare/"

# The project's targets: name -> path. With {card_id} (and {day}), each request picks a
# random card (and a random day that card has a prediction for).
TARGETS: dict[str, str] = {
    "trivial": "/bench/trivial/",
    "trivial-drf": "/bench/trivial-drf/",
    "keyed": "/bench/keyed/",
    "fair-price": FAIR_PRICE,
    "fair-price-dated": FAIR_PRICE + "?date={day}",
}
# Every target, the bare app's included.
ALL_TARGETS: dict[str, str] = {BARE: BARE_PATH, **TARGETS}
DEFAULT_TARGETS = [BARE, "trivial", "trivial-drf", "keyed", "fair-price", "fair-price-dated"]
# Targets: fair-price's throughput as a share of the bare app's, and its p99, at -c32.
TARGET_RATIO = 0.60
TARGET_P99_MS = 25.0

WRK_SCRIPT = """
local paths = {%(paths)s}
wrk.headers["X-API-Key"] = "%(key)s"
wrk.headers["Accept"] = "application/json"

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0) * 7919)
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

-- With --rate: each connection waits a random (exponential) pause before each request,
-- so all connections together offer about that many requests per second.
local mean_pause_ms = %(mean_pause_ms)s
if mean_pause_ms > 0 then
  function delay()
    return -math.log(1 - math.random()) * mean_pause_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, " ..
    "\\"p90_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d, \\"mean_us\\": %%f, " ..
    "\\"connect\\": %%d, \\"read\\": %%d, \\"write\\": %%d, \\"status\\": %%d, " ..
    "\\"timeout\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class Result:
    target: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    non_2xx: int
    hit_rate: float | None = None
    cpu: dict[str, Any] = field(default_factory=dict)
    run: int = 1  # the how-manieth run of this target (bare and fair-price repeat)

    @property
    def label(self) -> str:
        return f"{self.target} #{self.run}" if self.target in (BARE, "fair-price") else self.target

    @property
    def balanced(self) -> bool:
        """Whether every worker did at least half its share of the work.

        Gunicorn does not move keep-alive connections between workers: when wrk opens its
        32 connections at once, one worker sometimes accepts most of them and the others
        idle. Such a run measures that accident, not the code.
        """
        workers = self.cpu.get("workers") or []
        return not workers or min(workers) >= 0.5 * sum(workers) / len(workers)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=500)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per target")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rate",
        type=int,
        default=0,
        help="offer about this many requests/s in all (random pauses between a connection's "
        "requests) instead of as many as the server can answer",
    )
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    # gthread keeps connections alive (sync closes each one); 2 threads per process: more
    # threads queue on the GIL at every Redis round trip. Best of the sweep in
    # docs/benchmarks.md on 2 cores.
    parser.add_argument(
        "--worker-class",
        default="pokewatch_site.gunicorn_worker.BalancedThreadWorker",
        help="gunicorn worker",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help=f"comma-separated of {list(ALL_TARGETS)}",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="fair-price runs, each between two bare runs (when both are targets)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="also record a py-spy profile of every project worker during an extra "
        "fair-price run to this file (speedscope JSON; needs py-spy), and summarise it",
    )
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(targets) - ALL_TARGETS.keys()
    if unknown:
        raise SystemExit(f"unknown targets: {sorted(unknown)}")
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit("DATABASE_URL must point at PostgreSQL (the scratch DB is made there)")
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL must point at Redis (cache and rate-limit counters)")

    prefix = f"pokewatch-bench-{os.getpid()}"
    os.environ["POKEWATCH_BENCH_CACHE_PREFIX"] = prefix
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    import django

    django.setup()

    from django.db import connection

    from benchmarks._db import scratch_database

    # Its own name: a concurrent run (same name) would drop this one's database.
    with scratch_database(f"pokewatch_bench_api_{os.getpid()}") as where:
        card_ids, pairs = _load_data(args.cards, args.days, args.end)
        raw_key = _create_key()
        print(
            f"database: {where}; {len(card_ids)} cards x {args.days} days; "
            f"python {platform.python_version()}; {os.cpu_count()} CPUs; "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        config = (
            f"gunicorn -c config/gunicorn.conf.py --workers {args.workers} "
            + (f"--worker-class {args.worker_class}")
            + (f" --threads {args.threads}" if "thread" in args.worker_class.lower() else "")
        )
        print(
            f"server: {config}; load: wrk -t{args.wrk_threads} -c{args.connections} "
            f"-d{args.duration}s (warm-up {args.warmup}s per target)"
            + (f", ~{args.rate:,} req/s offered" if args.rate else ", as fast as answered")
        )
        env = _server_env(connection.settings_dict, prefix)
        bare_env = {**env, "DJANGO_SETTINGS_MODULE": BARE_SETTINGS}
        with tempfile.TemporaryDirectory(prefix="pokewatch-bench-api-") as tmp:
            servers = {"project": _Server(args, env, Path(tmp), "project", APP, "/api/v1/health/")}
            if BARE in targets:
                servers[BARE] = _Server(args, bare_env, Path(tmp), BARE, BARE_APP, BARE_PATH)
            try:
                for server in servers.values():
                    server.start()
                results, profile = _run_targets(
                    args, targets, servers, card_ids, pairs, raw_key, Path(tmp)
                )
            finally:
                for server in servers.values():
                    server.stop()
        _cleanup_cache()
    _report(results, args.rate)
    if profile is not None:
        _summarise_profile(*profile)
    _fail_on_errors(results)


# --- data ----------------------------------------------------------------------------------


def _load_data(cards: int, days: int, end: date) -> tuple[list[str], list[tuple[str, str]]]:
    import numpy as np
    import pandas as pd
    from django.conf import settings

    from pipelines.models import ModelVersion
    from pipelines.publishing import publish
    from prices.ingestion import upsert_prices
    from prices.sources.simulated import SimulatedSource

    source = SimulatedSource(seed=11, extra_cards=cards)
    batch = source.fetch([], end=end, days=days)
    upsert_prices(batch.rows, source="simulated", new_cards=batch.new_cards)

    # The last_price baseline: the fair price of a day is the previous day's price.
    frame = source.fetch_frame([], end=end, days=days).sort_values(["card_id", "date"])
    previous = frame.groupby("card_id")["market_price"].shift(1)
    frame["fair_price"] = previous.fillna(frame["market_price"])
    frame["deviation"] = frame["market_price"] / frame["fair_price"] - 1
    frame["signal"] = np.select(
        [
            frame["deviation"] <= -settings.POKEWATCH_BUY_THRESHOLD,
            frame["deviation"] >= settings.POKEWATCH_SELL_THRESHOLD,
        ],
        ["BUY", "SELL"],
        default="HOLD",
    )
    version = ModelVersion.objects.create(
        registered_name="bench-baseline", estimator="last_price", data_end=end
    )
    result = publish(version, frame.drop(columns=["currency"]).reset_index(drop=True))
    print(f"loaded {len(batch.rows):,} prices, published {result.written:,} predictions")
    ids = sorted(pd.unique(frame["card_id"]).tolist())
    pairs = list(zip(frame["card_id"], frame["date"].dt.strftime("%Y-%m-%d"), strict=True))
    return ids, pairs


def _create_key() -> str:
    from accounts.keys import create_key

    # A rate no run can reach: the rate-limit code path runs, it just never refuses.
    _, raw = create_key("benchmark", owner="benchmarks.api", rate="100000000/m")
    return raw


def _cleanup_cache() -> None:
    """Delete every key written under this run's prefix (and only those)."""
    from django.core.cache import caches

    for alias in ("default", "ratelimit"):
        try:
            caches[alias].delete_pattern("*")  # type: ignore[attr-defined]
        except Exception as exc:  # leave the keys to expire rather than fail the report
            print(f"could not delete the benchmark's {alias} cache keys: {exc}")


# --- server --------------------------------------------------------------------------------


def _database_url(settings_dict: dict) -> str:
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


def _server_env(settings_dict: dict, prefix: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(settings_dict),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "POKEWATCH_BENCH_CACHE_PREFIX": prefix,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback: production would sit behind a TLS-terminating proxy.
        "SECURE_SSL_REDIRECT": "0",
        # The production gunicorn config, without its access log (a proxy would log).
        "GUNICORN_ACCESS_LOG": "",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """One gunicorn with the production config; only the app and its settings differ."""

    def __init__(
        self,
        args: argparse.Namespace,
        env: dict[str, str],
        tmp: Path,
        name: str,
        app: str,
        ready_path: str,
    ) -> None:
        self.args = args
        self.env = env
        self.name = name
        self.app = app
        self.ready_path = ready_path
        self.port = _free_port()
        self.log_path = tmp / f"gunicorn-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "gunicorn", self.app,
            "--config", str(ROOT / "config" / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.args.workers),
            "--worker-class", self.args.worker_class,
            "--backlog", "2048",
        ]  # fmt: skip
        if "thread" in self.args.worker_class.lower():
            command += ["--threads", str(self.args.threads)]
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (our own gunicorn)
            command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn ({self.name}) exited:\n{self.log_tail()}")
            try:
                url = f"{self.base}{self.ready_path}"
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310
                    body = json.loads(resp.read())
                if body.get("status") == "ok" or body.get("ok") is True:
                    return
                raise SystemExit(f"{self.name}: {self.ready_path} is not ok: {body}")
            except OSError:
                time.sleep(0.25)
        raise SystemExit(
            f"gunicorn ({self.name}) did not answer {self.ready_path} in 60 s:\n{self.log_tail()}"
        )

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        out = subprocess.run(  # noqa: S603
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],  # noqa: S607
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        errors = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if " ERROR " in line or "Traceback" in line
        ]
        if errors:
            print(f"gunicorn ({self.name}) logged {len(errors)} error line(s), e.g.: {errors[0]}")

    def log_tail(self) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])


# --- load ----------------------------------------------------------------------------------


def _paths(template: str, card_ids: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    """Every path a target may request: one per card, one per (card, predicted day) or one."""
    if "{day}" in template:
        return [template.format(card_id=card, day=day) for card, day in pairs]
    if "{card_id}" in template:
        return [template.format(card_id=card) for card in card_ids]
    return [template]


def _lua(paths: list[str], raw_key: str, rate: int = 0, connections: int = 32) -> str:
    mean_pause_ms = 1000.0 * connections / rate if rate else 0
    return WRK_SCRIPT % {
        "paths": ",".join(f'"{p}"' for p in paths),
        "key": raw_key,
        "mean_pause_ms": f"{mean_pause_ms:.3f}",
    }


def _wrk(server: _Server, script: Path, seconds: int, args: argparse.Namespace) -> dict:
    command = [
        "wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{seconds}s",
        "--timeout", "10s", "--latency", "-s", str(script), f"{server.base}/",
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)  # noqa: S603
    match = re.search(r"^WRKJSON (\{.*\})$", out.stdout, re.MULTILINE)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return dict(json.loads(match.group(1)))


class _CpuMeter:
    """Where the machine's CPU time went during a run: this benchmark, the database and
    Redis servers, or anything else (other work on a shared machine skews the numbers)."""

    SERVERS = ("postgres", "redis-server")

    def __init__(self, servers: list[_Server]) -> None:
        self.servers = servers
        self.tick = os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> tuple[float, float, dict[int, tuple[str, float]], float]:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
        busy = total - fields[3] - fields[4]
        procs: dict[int, tuple[str, float]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as handle:
                    raw = handle.read()
            except OSError:
                continue
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            rest = raw[raw.rindex(")") + 2 :].split()
            procs[int(entry.name)] = (comm, (int(rest[11]) + int(rest[12])) / self.tick)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        mine = children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime
        return total / self.tick, busy / self.tick, procs, mine

    def shares(self, before: tuple, after: tuple, measured: _Server) -> dict[str, Any]:
        """Shares of all CPUs' time: bench (both gunicorns, wrk, this), servers, other, idle;
        ``workers``: each worker of the ``measured`` gunicorn."""
        total = after[0] - before[0]
        busy = after[1] - before[1]
        ours: set[int] = set()
        for server in self.servers:
            ours.update(server.worker_pids())
            if server.process is not None:
                ours.add(server.process.pid)
        measured_workers = set(measured.worker_pids())
        bench = after[3] - before[3]
        servers = 0.0
        workers = []
        for pid, (comm, seconds) in after[2].items():
            spent = seconds - before[2].get(pid, (comm, seconds))[1]
            if pid in ours:
                bench += spent
                if pid in measured_workers:
                    workers.append(spent)
            elif comm.startswith(self.SERVERS):
                servers += spent
        other = max(busy - bench - servers, 0.0)
        return {
            "bench": bench / total,
            "servers": servers / total,
            "other": other / total,
            "idle": max(total - busy, 0.0) / total,
            # How evenly the workers shared the load (gunicorn does not balance
            # keep-alive connections: whichever worker accepts one serves it to the end).
            "workers": sorted((w / total for w in workers), reverse=True),
        }


def _schedule(targets: list[str], rounds: int) -> list[str]:
    """The measured runs, in order: each target once, where it stands in ``targets``,
    except that with both ``bare`` and ``fair-price``, fair-price's place gets ``bare,
    fair-price, bare, ..., bare`` (``rounds`` fair-price runs, each between two bare runs),
    so that a slower or faster spell of the machine hits both."""
    interleave = BARE in targets and "fair-price" in targets
    order: list[str] = []
    for name in targets:
        if interleave and name == BARE:
            continue
        if interleave and name == "fair-price":
            order += [BARE, "fair-price"] * max(rounds, 1) + [BARE]
        else:
            order.append(name)
    return order


def _run_targets(
    args: argparse.Namespace,
    targets: list[str],
    servers: dict[str, _Server],
    card_ids: list[str],
    pairs: list[tuple[str, str]],
    raw_key: str,
    tmp: Path,
) -> tuple[list[Result], tuple[Path, int, float] | None]:
    """Every measured run's result, and (file, requests, seconds) of the profile if any."""
    from prices import caching

    def server_of(name: str) -> _Server:
        return servers[BARE] if name == BARE else servers["project"]

    scripts = {}
    for name in targets:
        scripts[name] = tmp / f"{name}.lua"
        paths = _paths(ALL_TARGETS[name], card_ids, pairs)
        scripts[name].write_text(_lua(paths, raw_key, args.rate, args.connections))
    _check_target_once(servers["project"], card_ids[0], raw_key)

    # Warm every worker on every target (imports, connections, first queries) first,
    # starting from an empty prediction cache: the warm-up's misses fill it.
    caching.clear()
    if args.warmup > 0:
        for name in targets:
            _wrk(server_of(name), scripts[name], args.warmup, args)

    meter = _CpuMeter(list(servers.values()))
    results = []
    runs: dict[str, int] = {}
    for name in _schedule(targets, args.rounds):
        server = server_of(name)
        runs[name] = runs.get(name, 0) + 1
        cached = name.startswith("fair-price")
        counted = caching.stats() if cached else None
        before = meter.snapshot()
        raw = _wrk(server, scripts[name], args.duration, args)
        cpu = meter.shares(before, meter.snapshot(), server)
        stats = _cache_delta(counted, caching.stats()) if counted else None
        errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
        result = Result(
            target=name,
            requests=raw["requests"],
            seconds=raw["duration_us"] / 1e6,
            p50_ms=raw["p50_us"] / 1000,
            p90_ms=raw["p90_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            max_ms=raw["max_us"] / 1000,
            errors=errors,
            non_2xx=raw["status"],
            hit_rate=stats.hit_rate if stats else None,
            cpu=cpu,
            run=runs[name],
        )
        results.append(result)
        print(
            f"  {result.label}: {result.rps:,.0f} req/s, p99 {result.p99_ms:.1f} ms; CPU: "
            f"benchmark (gunicorn + wrk) {cpu['bench']:.0%}, "
            f"PostgreSQL + Redis {cpu['servers']:.0%}, other processes {cpu['other']:.0%}, "
            f"idle {cpu['idle']:.0%}; workers "
            + "/".join(f"{w:.0%}" for w in cpu["workers"])
            + (f"; cache hits {stats.hits:,}, misses {stats.misses:,}" if stats else "")
        )
    profile = None
    if args.profile and "fair-price" in targets:
        profile = _profile(servers["project"], scripts["fair-price"], args)
    return results, profile


def _cache_delta(before: Any, after: Any) -> Any:
    """The prediction cache's hits and misses during one run (``CacheStats`` fields)."""
    hits, misses = after.hits - before.hits, after.misses - before.misses
    total = hits + misses
    return SimpleNamespace(
        hits=hits, misses=misses, hit_rate=round(hits / total, 4) if total else None
    )


def _check_target_once(server: _Server, card_id: str, raw_key: str) -> None:
    request = urllib.request.Request(  # noqa: S310
        f"{server.base}{FAIR_PRICE.format(card_id=card_id)}", headers={"X-API-Key": raw_key}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        body = json.loads(resp.read())
    if "fair_price" not in body:
        raise SystemExit(f"unexpected fair-price answer: {body}")


PROFILE_RATE = 200  # py-spy samples per second and thread


def _profile(
    server: _Server, script: Path, args: argparse.Namespace
) -> tuple[Path, int, float] | None:
    """py-spy on every worker while wrk loads fair-price again (not counted in the table).

    Only the thread holding the GIL is sampled (``--gil``): a worker's Python CPU time,
    without its threads waiting on a socket, the GIL or the selector (py-spy counts those
    as busy otherwise).

    Returns the profile's file, and the requests answered and seconds taken meanwhile.
    """
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy not found (.venv/bin/pip install py-spy): no profile")
        return None
    assert server.process is not None
    seconds = max(args.duration, 5)
    recorder = subprocess.Popen(  # noqa: S603
        [py_spy, "record", "--pid", str(server.process.pid), "--subprocesses",
         "--duration", str(seconds), "--rate", str(PROFILE_RATE), "--format", "speedscope",
         "--output", str(args.profile), "--nonblocking", "--gil"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(1)
    # wrk runs a little shorter than py-spy, so every request it counts was sampled.
    raw = _wrk(server, script, seconds - 2, args)
    _, err = recorder.communicate(timeout=seconds + 60)
    if recorder.returncode != 0:
        print(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        return None
    print(
        f"  profile of an extra fair-price run ({raw['requests'] / raw['duration_us'] * 1e6:,.0f}"
        f" req/s under py-spy) written to {args.profile}"
    )
    return args.profile, raw["requests"], raw["duration_us"] / 1e6


# --- profile summary -----------------------------------------------------------------------

GUNICORN = "gunicorn + WSGI (accept, parse, write, threads)"
MIDDLEWARE = "Django + third-party middleware"
DJANGO = "Django core (handler, URLs, request/response, asgiref locals)"
DRF_AUTH = "DRF auth, permission, throttle (api-key, ratelimit)"
DRF = "DRF view, negotiation, render"
REDIS = "Redis client (redis-py, django-redis)"
OTHER_LIBS = "other libraries"
STDLIB = "stdlib or C only (thread, selector loops)"


def _frame_group(file: str) -> str:
    """The module group of a frame's file; STDLIB for the standard library and builtins."""
    path = file.replace("\\", "/")
    if "/site-packages/" in path:
        lib = path.split("/site-packages/", 1)[1]
        top = lib.split("/", 1)[0]
        if top == "gunicorn" or lib == "django/core/handlers/wsgi.py":
            return GUNICORN
        if top in ("redis", "django_redis", "hiredis"):
            return REDIS
        if top in ("rest_framework_api_key", "django_ratelimit") or lib in (
            "rest_framework/authentication.py",
            "rest_framework/permissions.py",
            "rest_framework/throttling.py",
        ):
            return DRF_AUTH
        if top == "rest_framework":
            return DRF
        if (
            top in ("corsheaders", "whitenoise")
            or lib.startswith("django/middleware/")
            or lib == "django/utils/deprecation.py"  # MiddlewareMixin.__call__
            or (lib.startswith("django/contrib/") and lib.endswith("/middleware.py"))
        ):
            return MIDDLEWARE
        if top in ("django", "asgiref"):  # asgiref: Django's thread-locals
            return DJANGO
        return OTHER_LIBS
    relative = path.removeprefix(f"{ROOT}/")
    if relative.endswith(".py") and _is_project_file(relative):
        if relative == "pokewatch_site/gunicorn_worker.py":
            return GUNICORN
        return f"project: {relative.split('/', 1)[0]}/"
    # The standard library, and py-spy's own root frames (process, thread).
    return STDLIB


@functools.cache
def _is_project_file(relative: str) -> bool:
    return not relative.startswith("/") and (ROOT / relative).is_file()


def _summarise_profile(path: Path, requests: int, seconds: float) -> None:
    """Where the profiled run's worker time went: by module group and by function.

    Each sample is charged to the innermost frame outside the standard library (a
    ``socket.recv`` under redis-py counts as Redis client, ``json.dumps`` under DRF's
    renderer as DRF), so the groups say which code spent the time. The samples are of
    the threads holding the GIL (see :func:`_profile`): the workers' Python CPU time; the
    kernel's side of their system calls is not in them.
    """
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    groups = [_frame_group(frame.get("file") or "") for frame in frames]
    by_group: dict[str, float] = {}
    own: dict[int, float] = {}  # innermost frame -> time
    total = 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            total += weight
            own[stack[-1]] = own.get(stack[-1], 0.0) + weight
            charged = next((groups[i] for i in reversed(stack) if groups[i] != STDLIB), STDLIB)
            by_group[charged] = by_group.get(charged, 0.0) + weight
    if not total:
        print("\nthe profile holds no samples")
        return
    per_request_us = 1e6 / requests if requests else 0.0
    print()
    print(
        f"where a cached fair-price read's worker time goes (py-spy --gil, {PROFILE_RATE} Hz: "
        f"{total:.1f} s holding the GIL in {seconds:.0f} s, {requests:,} requests, "
        f"{total * per_request_us:.0f} us a request):"
    )
    print(
        f"  {'module group (stdlib calls charged to their caller)':<60} {'share':>6} {'us/req':>7}"
    )
    for name, spent in sorted(by_group.items(), key=lambda item: -item[1]):
        print(f"  {name:<60} {spent / total:>6.1%} {spent * per_request_us:>7.0f}")
    print(f"  {'top functions by own time':<60} {'share':>6} {'us/req':>7}")
    # Functions, not lines: py-spy gives one frame per line.
    by_function: dict[tuple[str, str], float] = {}
    for index, spent in own.items():
        frame = frames[index]
        file = str(frame.get("file") or "")
        short = file.split("/site-packages/", 1)[-1].removeprefix(f"{ROOT}/")
        # py-spy's root frames (no file): the GIL holder was in C, without a Python frame.
        name = f"{frame.get('name')} ({short})" if file else "(no Python frame)"
        key = (name, groups[index])
        by_function[key] = by_function.get(key, 0.0) + spent
    for (name, _), spent in sorted(by_function.items(), key=lambda item: -item[1])[:15]:
        print(f"  {name[:60]:<60} {spent / total:>6.1%} {spent * per_request_us:>7.0f}")


# --- report --------------------------------------------------------------------------------


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _report(results: list[Result], rate: int = 0) -> None:
    bare = [r for r in results if r.target == BARE]
    trivial = next((r for r in results if r.target == "trivial"), None)
    reference = _mean([r.rps for r in bare]) if bare else (trivial.rps if trivial else None)
    column = "vs bare" if bare else "vs trivial"
    print()
    print(
        f"{'target':<18} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'non-2xx':>7} {'errors':>6} {column:>10} "
        f"{'cache hits':>10} {'other CPU':>9} {'workers':>8}"
    )
    for r in results:
        share = f"{r.rps / reference:.0%}" if reference else "-"
        hits = f"{r.hit_rate:.1%}" if r.hit_rate is not None else "-"
        print(
            f"{r.label:<18} {r.requests:>9,} {r.rps:>8,.0f} {r.p50_ms:>7.1f} {r.p90_ms:>7.1f} "
            f"{r.p99_ms:>7.1f} {r.max_ms:>7.1f} {r.non_2xx:>7,} {r.errors:>6,} {share:>10} "
            f"{hits:>10} {r.cpu.get('other', 0):>9.0%} "
            f"{'even' if r.balanced else 'UNEVEN':>8}"
        )
    if bare:
        print(f"({column}: of the mean of the {len(bare)} bare runs, {reference:,.0f} req/s)")

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    fairs = [r for r in results if r.target == "fair-price"]
    if fairs and rate:
        worst = max(r.p99_ms for r in fairs)
        print()
        print(
            f"offered load ~{rate:,} req/s (not a throughput test): fair-price p99 {worst:.1f} ms "
            f"(target <= {TARGET_P99_MS:.0f} ms: {verdict(worst <= TARGET_P99_MS)})"
        )
    elif fairs and bare:
        # Run order: bare #1, fair-price #1, bare #2, fair-price #2, ..., bare #n+1.
        print()
        print(
            f"fair-price against the bare Django app (targets: >= {TARGET_RATIO:.0%} of its "
            f"req/s, p99 <= {TARGET_P99_MS:.0f} ms):"
        )
        for fair in fairs:
            around = [r for r in bare if r.run in (fair.run, fair.run + 1)]
            local = _mean([r.rps for r in around])
            ratio = fair.rps / local
            print(
                f"  round {fair.run}: fair-price {fair.rps:,.0f} req/s / bare "
                + " and ".join(f"{r.rps:,.0f}" for r in around)
                + f" (mean {local:,.0f}) = {ratio:.0%} ({verdict(ratio >= TARGET_RATIO)}); "
                f"p99 {fair.p99_ms:.1f} ms ({verdict(fair.p99_ms <= TARGET_P99_MS)}), "
                f"p50 {fair.p50_ms:.1f} ms; bare p99 "
                + " and ".join(f"{r.p99_ms:.1f}" for r in around)
                + " ms"
            )
        ratio = _mean([r.rps for r in fairs]) / _mean([r.rps for r in bare])
        worst = max(r.p99_ms for r in fairs)
        print(
            f"  all rounds: fair-price / bare throughput {ratio:.0%} "
            f"(target >= {TARGET_RATIO:.0%}: {verdict(ratio >= TARGET_RATIO)}); "
            f"fair-price p99, worst of {len(fairs)}: {worst:.1f} ms "
            f"(target <= {TARGET_P99_MS:.0f} ms: {verdict(worst <= TARGET_P99_MS)})"
        )
    elif fairs and trivial:
        fair = fairs[0]
        ratio = fair.rps / trivial.rps
        print()
        print(
            f"fair-price / trivial throughput (no bare run): {ratio:.0%}; fair-price p99 "
            f"{fair.p99_ms:.1f} ms (target <= {TARGET_P99_MS:.0f} ms: "
            f"{verdict(fair.p99_ms <= TARGET_P99_MS)})"
        )
    uneven = [r.label for r in results if not r.balanced]
    if uneven and not rate:
        print(
            f"UNEVEN (a worker did less than half its share; not comparable, run again): "
            f"{', '.join(uneven)}"
        )


def _fail_on_errors(results: list[Result]) -> None:
    if any(r.non_2xx or r.errors for r in results):
        raise SystemExit("some requests failed (non-2xx or socket errors): see the table")


if __name__ == "__main__":
    main()
