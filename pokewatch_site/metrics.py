"""Prometheus metrics: the application's own, the exposition of ``/metrics`` and who may read it.

Two kinds of metric live here:

- **Events**, counted where they happen, in whichever process they happen in: prediction
  cache hits and misses, rate-limit refusals, authentication failures, Celery tasks, the
  duration of training steps, cards scored. They are prometheus-client counters and
  histograms. Under gunicorn (several worker processes) and in the Celery worker (a pool
  of processes) prometheus-client's multiprocess mode adds them up across processes: each
  process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` and the exposition
  reads them all (config/gunicorn.conf.py and pokewatch_site/celery.py set the directory
  up and clean it).
- **State**, read from the database and the broker when ``/metrics`` is scraped: the
  champion's quality and age, training runs by status, the age of the newest price per
  source, signals published today, drift, queue lengths. An app contributes such metrics
  by registering a collector in its ``AppConfig.ready()`` (:func:`register_collector`); a
  collector whose source is down is skipped and ``pokewatch_metrics_source_up`` says so,
  the rest of the page is still served.

Django's request, latency and database metrics come from django-prometheus (its
middleware and database backends; see settings).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from pokewatch_site import outages

logger = logging.getLogger(__name__)

# --- Events (multiprocess-safe counters and histograms) -----------------------------------

PREDICTION_CACHE_HITS = Counter(
    "pokewatch_prediction_cache_hits", "Prediction cache reads answered from the cache"
)
PREDICTION_CACHE_MISSES = Counter(
    "pokewatch_prediction_cache_misses", "Prediction cache reads that went to the database"
)
RATELIMIT_REFUSALS = Counter(
    "pokewatch_ratelimit_refusals", "Requests refused with 429, by rate-limit group", ["group"]
)
AUTH_FAILURES = Counter(
    "pokewatch_auth_failures",
    "Keyed API requests refused with 401, by reason "
    "(missing, malformed, unknown, revoked, expired)",
    ["reason"],
)
CELERY_TASKS = Counter(
    "pokewatch_celery_tasks",
    "Celery tasks by name and state (started, succeeded, failed, retried, revoked)",
    ["task", "state"],
)
TRAINING_STEP_SECONDS = Histogram(
    "pokewatch_training_step_seconds",
    "Duration of each training pipeline step",
    ["step"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf")),
)
CARDS_SCORED = Counter(
    "pokewatch_cards_scored",
    "Predictions written, by what wrote them (training: a new champion; ingestion: new prices)",
    ["trigger"],
)


#: Every reason an API request can be refused with 401 (accounts.authentication, .permissions).
AUTH_FAILURE_REASONS = ("missing", "malformed", "unknown", "revoked", "expired")
for _reason in AUTH_FAILURE_REASONS:  # at 0 from the start: rate() needs a first sample
    AUTH_FAILURES.labels(reason=_reason)
for _group in settings.POKEWATCH_RATES:
    RATELIMIT_REFUSALS.labels(group=_group)


def is_multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


# --- State (collected at scrape time) ------------------------------------------------------


class StateCollector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


#: (source, collector): what each reads, "database" or "broker"
#: (``pokewatch_metrics_source_up``'s label), and the collector.
_collectors: list[tuple[str, StateCollector]] = []


def register_collector(collector: StateCollector, *, source: str = "database") -> None:
    """Add ``collector`` to what ``/metrics`` serves; ``source`` is what it reads (its
    queries run bounded: :func:`bounded_queries`). Once per type: ``ready()`` may run more
    than once in tests."""
    if not any(type(known) is type(collector) for _, known in _collectors):
        _collectors.append((source, collector))


#: Seconds the scrape's database queries may take, all together (PostgreSQL).
STATE_QUERY_TIMEOUT = 2.0


@contextmanager
def bounded_queries(seconds: float = STATE_QUERY_TIMEOUT) -> Iterator[None]:
    """Run the enclosed queries in one transaction that PostgreSQL cancels after ``seconds``."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [f"{int(seconds * 1000)}ms"])
        yield


class _State:
    """The registered collectors, each isolated: one that fails is left out of the page."""

    def collect(self) -> Iterator[Metric]:
        up: dict[str, bool] = {}
        for source, collector in _collectors:
            if source == "database" and up.get(source) is False:
                continue  # already found down during this scrape: don't wait for it again
            try:
                if source == "database":
                    with bounded_queries():
                        families = list(collector.collect())
                else:
                    families = list(collector.collect())
            except Exception as exc:  # a source that is down must not take the page down
                up[source] = False
                outages.warn(
                    f"metrics ({source})",
                    f"/metrics: {type(collector).__name__} skipped ({type(exc).__name__}: {exc})",
                )
                continue
            up.setdefault(source, True)
            yield from families
        gauge = GaugeMetricFamily(
            "pokewatch_metrics_source_up",
            "Whether the source of the state metrics answered this scrape (1) or not (0)",
            labels=["source"],
        )
        for source, ok in sorted(up.items()):
            gauge.add_metric([source], 1.0 if ok else 0.0)
        yield gauge


class QueueCollector:
    """``pokewatch_celery_queue_length{queue}``: messages waiting on each queue the project
    sends to, asked of the broker with the health check's short timeouts."""

    def collect(self) -> Iterator[Metric]:
        from kombu.exceptions import ChannelError

        from pokewatch_site.celery import app
        from pokewatch_site.health import BROKER, broker_connection

        if outages.is_down(BROKER):  # failed less than an interval ago: don't wait again
            raise ConnectionError("the broker was unreachable moments ago")
        gauge = GaugeMetricFamily(
            "pokewatch_celery_queue_length", "Messages waiting on a Celery queue", labels=["queue"]
        )
        queues = sorted({app.conf.task_default_queue, settings.POKEWATCH_SHARD_QUEUE})
        try:
            with broker_connection() as conn:
                channel = conn.default_channel
                for queue in queues:
                    try:
                        waiting = channel.queue_declare(queue=queue, passive=True).message_count
                    except ChannelError:  # never declared: nothing was ever sent to it
                        waiting = 0
                    gauge.add_metric([queue], waiting)
        except Exception as exc:
            outages.failed(BROKER, exc)
            raise
        yield gauge


register_collector(QueueCollector(), source="broker")


class _Process:
    """This process's metrics in single-process mode (``runserver``, tests)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def registry(*, state: bool = True) -> CollectorRegistry:
    """What a scrape returns: every process's events (multiprocess mode) or this
    process's (otherwise), plus the state metrics when ``state``."""
    result = CollectorRegistry()
    if is_multiprocess():
        MultiProcessCollector(result)
    else:
        result.register(_Process())  # type: ignore[arg-type]
    if state:
        result.register(_State())  # type: ignore[arg-type]
    return result


def exposition(accept: str, *, state: bool = True) -> tuple[bytes, str]:
    """The metrics page in the format ``accept`` asks for (Prometheus text or OpenMetrics)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry(state=state)), content_type


# --- Who may read /metrics -----------------------------------------------------------------


def refusal(authorization: str, remote_addr: str) -> tuple[int, str] | None:
    """None if the scrape may proceed, else (status, message).

    With ``POKEWATCH_METRICS_TOKEN`` set, ``Authorization: Bearer <token>`` is required
    (from anywhere); without it, only loopback clients are answered. Behind a reverse
    proxy on the same host every client looks local: set the token there.
    """
    token = settings.POKEWATCH_METRICS_TOKEN
    if token:
        scheme, _, sent = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode(), token.encode()
        ):
            return None
        return 401, "A bearer token is required: Authorization: Bearer <POKEWATCH_METRICS_TOKEN>."
    try:
        local = ipaddress.ip_address(remote_addr).is_loopback
    except ValueError:
        local = False
    if local:
        return None
    return 403, "/metrics answers loopback clients only; set POKEWATCH_METRICS_TOKEN to scrape it."


def seconds_since(moment: Any) -> float:
    """Seconds from ``moment`` (an aware datetime) to now, never negative."""
    return max(0.0, time.time() - moment.timestamp())
