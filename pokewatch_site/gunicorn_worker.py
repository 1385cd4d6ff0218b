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

It also answers gunicorn's own errors (a request it cannot parse: a request line or a
header over its limits, a malformed header; answered before Django sees anything) with
a JSON ``{"detail": ...}`` like every other error of the API, instead of gunicorn's
HTML page (:func:`write_json_error`).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

ACCEPT_PAUSE = 0.001


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, with the error as JSON rather than HTML."""
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class BalancedThreadWorker(ThreadWorker):
    def init_process(self) -> None:
        # gunicorn's one writer of its error pages (Worker.handle_error calls it), replaced
        # in this worker process only.
        util.write_error = write_json_error
        super().init_process()

    def accept(self, server: Any, listener: Any) -> None:
        super().accept(server, listener)
        if self.nr_conns > self.cfg.threads:
            time.sleep(ACCEPT_PAUSE)
