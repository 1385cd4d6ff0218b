"""django-redis's client with a circuit breaker (``OPTIONS["CLIENT_CLASS"]`` of the caches).

Without it, a Redis that hangs costs the socket timeout on every call of every request
(a keyed read makes several), and with ``IGNORE_EXCEPTIONS`` every failed call logs a
traceback. With it, the first failure (a connection error or a timeout) makes the
server count as down for ``POKEWATCH_OUTAGE_INTERVAL`` seconds (:mod:`pokewatch_site.outages`):
calls meanwhile raise django-redis's ``ConnectionInterrupted`` at once, which
``IGNORE_EXCEPTIONS`` turns into a miss (reads then come from the database), and the
outage is logged as one warning per server per interval. After the interval, one call
tries the server again.
"""

from __future__ import annotations

import functools
import inspect
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pokewatch_site import outages

# Failures of the server or the network; a ResponseError (a bad command) is not one.
_FAILURES = (RedisConnectionError, RedisTimeoutError, socket.timeout, OSError)
# DefaultClient's methods that need no server (or only hand back an object that does).
_OFFLINE = frozenset(
    {
        "connect",
        "decode",
        "disconnect",
        "encode",
        "get_client",
        "get_client_with_index",
        "get_next_client_index",
        "lock",
        "make_key",
        "make_pattern",
        "reverse_key",
    }
)
_inside = threading.local()  # a guarded call in progress (add() calls set(), etc.)


def _server_name(location: str) -> str:
    """``Redis host:port/db`` of a Redis URL, without credentials."""
    parts = urlsplit(location)
    return f"Redis {parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


def _is_failure(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionInterrupted):
        return isinstance(exc.__cause__, _FAILURES)
    return isinstance(exc, _FAILURES)


class CircuitBreakerClient(DefaultClient):
    """A ``DefaultClient`` that skips a server which failed less than an interval ago."""

    def __init__(self, server: Any, params: dict[str, Any], backend: Any) -> None:
        super().__init__(server, params, backend)
        self.dependency = ", ".join(_server_name(location) for location in self._server)

    def _refuse(self) -> ConnectionInterrupted:
        cause = RedisConnectionError(
            f"{self.dependency} is treated as down (it failed less than "
            f"{outages.interval():g} s ago)"
        )
        refused = ConnectionInterrupted(connection=None)
        refused.__cause__ = cause
        return refused

    def _failed(self, exc: BaseException) -> None:
        outages.failed(self.dependency, exc.__cause__ or exc)


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` behind the breaker; a call it makes to another method is not checked again."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def iterate(self: CircuitBreakerClient, *args: Any, **kwargs: Any) -> Iterator[Any]:
            if outages.is_down(self.dependency):
                raise self._refuse()
            try:
                yield from method(self, *args, **kwargs)
            except Exception as exc:
                if _is_failure(exc):
                    self._failed(exc)
                raise
            outages.succeeded(self.dependency)

        return iterate

    @functools.wraps(method)
    def call(self: CircuitBreakerClient, *args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, "depth", 0):
            return method(self, *args, **kwargs)
        if outages.is_down(self.dependency):
            raise self._refuse()
        _inside.depth = 1
        try:
            result = method(self, *args, **kwargs)
        except Exception as exc:
            if _is_failure(exc):
                self._failed(exc)
            raise
        finally:
            _inside.depth = 0
        outages.succeeded(self.dependency)
        return result

    return call


for _name, _method in inspect.getmembers(DefaultClient, inspect.isfunction):
    if not _name.startswith("_") and _name not in _OFFLINE:
        setattr(CircuitBreakerClient, _name, _guarded(_method))
