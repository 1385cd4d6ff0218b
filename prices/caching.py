"""The prediction cache: key builders, TTLs, generation, statistics and clearing.

Every key includes the *generation*, a number bumped by each publish, so a new champion
makes all older entries unreachable at once, with no scan.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)

GENERATION_KEY = "predictions:generation"


def current_generation() -> int:
    value = cache.get(GENERATION_KEY)
    return int(value) if value is not None else 0


def bump_generation() -> int:
    """Make every cached prediction unreachable; returns the new generation."""
    cache.add(GENERATION_KEY, 0, timeout=None)
    value = cache.incr(GENERATION_KEY)
    return int(value) if value is not None else 0
