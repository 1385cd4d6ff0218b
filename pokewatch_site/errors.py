"""The one error type of the PokeWatch domain.

Services raise subclasses of :class:`PokeWatchError`; management commands turn them into
``CommandError`` and the API's exception handler into a JSON ``{"detail": ...}``.
"""

from __future__ import annotations


class PokeWatchError(Exception):
    """A failure the caller can explain to a user: bad input, an unreachable source..."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(PokeWatchError):
    """Input (a file, a request, arguments) that cannot be accepted as it is."""


class NotFound(PokeWatchError):
    status_code = 404


class SourceError(PokeWatchError):
    """A price source failed; ``transient`` says whether trying again later may help."""

    status_code = 502
    transient = False


class SourceUnavailable(SourceError):
    """Timeouts, connection failures, 429 and 5xx after all retries: try again later."""

    transient = True
