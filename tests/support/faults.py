"""Servers that fail on purpose, for the fault tests: a black hole that accepts connections
and never answers (a hung Redis or broker), and a closed port (one that is down)."""

from __future__ import annotations

import socket
import threading
from typing import Any

from django.conf import settings

#: A local port nothing listens on: connections are refused at once.
CLOSED_URL = "redis://127.0.0.1:1"


class BlackHole:
    """A TCP server on 127.0.0.1 that accepts connections, reads nothing, answers nothing."""

    def __init__(self) -> None:
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self._server.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self._held.append(conn)  # kept open, never answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._server.close()


def redis_caches(base: str, timeout: float) -> dict[str, Any]:
    """The site's two Redis caches (default on DB 1, counters on DB 2) at ``base``, with the
    site's options (client, IGNORE_EXCEPTIONS) and ``timeout`` as both socket timeouts."""
    site_options: dict[str, Any] = dict(settings.CACHES["default"].get("OPTIONS", {}))
    options = {
        **site_options,
        "CLIENT_CLASS": "pokewatch_site.redis_client.CircuitBreakerClient",
        "IGNORE_EXCEPTIONS": True,
        "SOCKET_CONNECT_TIMEOUT": timeout,
        "SOCKET_TIMEOUT": timeout,
    }
    return {
        alias: {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{base}/{db}",
            "KEY_PREFIX": "pokewatch",
            "OPTIONS": options,
        }
        for alias, db in (("default", 1), ("ratelimit", 2))
    }
