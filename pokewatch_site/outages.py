"""Dependencies that fail: treated as down for a while, and logged once per interval.

A Redis that hangs costs its socket timeout on every call; one that is down fills the log
with a traceback per call. Both are handled here, per dependency (a name such as
``"Redis 10.0.0.5:6379/1"`` or ``"Celery broker"``):

* :func:`failed` records a failure: the dependency is treated as down for
  ``POKEWATCH_OUTAGE_INTERVAL`` seconds, and a single warning line (no traceback) is
  logged, at most once per dependency per interval.
* :func:`is_down` says whether to skip the dependency now. Once the interval has passed,
  one caller is let through to try it again (the others still skip it meanwhile); its
  success (:func:`succeeded`) ends the outage, its failure starts another interval.
* :func:`warn` logs any other outage message under the same once-per-interval rule.

The state is per process (each gunicorn worker finds out for itself, at the cost of one
timeout per interval).
"""

from __future__ import annotations

import logging
import threading
from time import monotonic

from django.conf import settings

from pokewatch_site import caching

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_down_until = caching.memo("outages:down-until")
_warned_at = caching.memo("outages:warned-at")


def interval() -> float:
    """Seconds a failed dependency is treated as down, and between two of its warnings."""
    return float(settings.POKEWATCH_OUTAGE_INTERVAL)


def is_down(dependency: str) -> bool:
    """Whether to skip ``dependency`` now (it failed less than an interval ago)."""
    if dependency not in _down_until:  # the usual case: no lock taken
        return False
    now = monotonic()
    with _lock:
        until = _down_until.get(dependency)
        if until is None:
            return False
        if now < until:
            return True
        # This caller tries it again; the others keep skipping it until it is known.
        _down_until[dependency] = now + interval()
        return False


def failed(dependency: str, reason: BaseException | str) -> None:
    """``dependency`` failed (``reason``): treat it as down for an interval, say so once."""
    with _lock:
        _down_until[dependency] = monotonic() + interval()
    what = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else reason
    warn(dependency, f"{dependency} unreachable ({what}); treated as down for {interval():g} s")


def succeeded(dependency: str) -> None:
    """``dependency`` answered: it is up (logged once if it was down)."""
    if dependency not in _down_until:
        return
    with _lock:
        was_down = _down_until.pop(dependency, None) is not None
    if was_down:
        logger.info("%s reachable again", dependency)


def warn(dependency: str, message: str) -> None:
    """Log ``message`` as a warning unless ``dependency`` had one less than an interval ago."""
    now = monotonic()
    with _lock:
        last = _warned_at.get(dependency)
        if last is not None and now - last < interval():
            return
        _warned_at[dependency] = now
    logger.warning("%s", message)
