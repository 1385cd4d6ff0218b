"""A gthread worker that leaves new connections to its siblings once it has enough.

Gunicorn's workers all wait on the one listening socket and never hand a keep-alive
connection to another worker. When many connections arrive at once (a load balancer's
pool opening, a client's connection pool), the one or two workers the kernel wakes first
accept nearly all of them, and the others idle: on 2 cores we measured one worker holding
all 32 connections of a load test, at half the machine's throughput (docs/benchmarks.md).

:class:`BalancedThreadWorker` is gunicorn's ``gthread`` worker with one change: once it
holds more connections than it has threads, it pauses for :data:`ACCEPT_PAUSE` seconds
after each further accept, so that sleeping siblings get the next ones. A worker with
spare threads accepts at once, so this costs nothing until a worker is already busy.
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

ACCEPT_PAUSE = 0.001


class BalancedThreadWorker(ThreadWorker):
    def accept(self, server: Any, listener: Any) -> None:
        super().accept(server, listener)
        if self.nr_conns > self.cfg.threads:
            time.sleep(ACCEPT_PAUSE)
