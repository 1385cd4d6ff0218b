"""The multiprocess metrics directory's upkeep, and the Celery worker's own metrics server.

Imports nothing of prometheus-client at module level: gunicorn's configuration and the
Celery app import this before the multiprocess directory is decided.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

logger = logging.getLogger(__name__)


def clear_multiprocess_dir() -> int:
    """Delete the metric files left by earlier processes; the number deleted.

    prometheus-client adds up every file in the directory, dead processes' included, so a
    server must start from an empty one (its documentation asks for this).
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return 0
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    removed = 0
    for file in path.glob("*.db"):
        file.unlink(missing_ok=True)
        removed += 1
    return removed


def mark_process_dead(pid: int) -> None:
    """Forget a dead process's live gauges (its counters stay counted)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """``GET /metrics`` of a process with no Django view: this process's events only (the
    web's ``/metrics`` serves the state metrics, so they are not scraped twice)."""
    import json

    from pokewatch_site.metrics import exposition, refusal

    if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in (
        "GET",
        "HEAD",
    ):
        status, body, headers = "404 Not Found", {"detail": "Not found."}, []
    else:
        refused = refusal(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR", ""))
        if refused is None:
            page, content_type = exposition(environ.get("HTTP_ACCEPT", ""), state=False)
            start_response("200 OK", [("Content-Type", content_type)])
            return [page]
        code, detail = refused
        status = "401 Unauthorized" if code == 401 else "403 Forbidden"
        body = {"detail": detail}
        headers = [("WWW-Authenticate", 'Bearer realm="metrics"')] if code == 401 else []
    start_response(status, [("Content-Type", "application/json"), *headers])
    return [json.dumps(body).encode()]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s would drown the worker's log."""


def serve_in_thread(addr: str, port: int) -> Any:
    """Serve :func:`wsgi_app` on ``addr:port`` from a daemon thread; the server."""
    from prometheus_client.exposition import ThreadingWSGIServer

    server = make_server(addr, port, wsgi_app, ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
    thread.start()
    logger.info("worker metrics on http://%s:%d/metrics", addr, server.server_port)
    return server
