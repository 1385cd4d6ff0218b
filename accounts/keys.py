"""API key services (create, revoke, touch) and selectors (resolve, status).

Caching of :func:`resolve_key`
------------------------------
Each request resolves its key: one indexed query by prefix plus a SHA-512 check. The
lookup by prefix may be cached for :data:`CACHE_TTL` seconds, but a revoke, a deletion or
a change of expiry must take effect at once in *every* process. So:

* Lookups are cached only when the default cache is shared by all processes (Redis,
  Memcached, database, files). With the local-memory default, a deletion would reach only
  the process that made it, so nothing is cached there and every request asks the
  database.
* Every change made through the model (``save()``, ``delete()``, hence the admin, the
  ``apikey`` command and :func:`revoke_key`) calls :func:`forget_cached_key`, which deletes
  the entry *and* replaces the key's version token. An entry is only used while its
  version matches the current token, so an entry written by a request that read the row
  just before the revoke committed is unusable too. The token is also replaced after the
  surrounding transaction commits, closing the same race for changes inside a transaction.
* A prefix with no key, or a revoked one, is cached as such (None, or the revoked row) for
  :data:`MISSING_TTL` seconds, under the same version token, so a flood of made-up keys
  costs cache reads, not database queries. Keeping the revoked row tells its holder's
  failures apart (``revoked``, not ``unknown``) at no extra query.
* Bulk ``QuerySet.update()`` / ``.delete()`` bypass the model and therefore the
  invalidation: use :func:`revoke_key` (entries would otherwise live up to ``CACHE_TTL``).
* If the shared cache cannot be reached when the token is replaced (this process cannot
  reach Redis, others can), the change is in the database but other processes may still
  use a cached row: every entry is written with ``CACHE_TTL``, so the last one expires at
  most ``CACHE_TTL`` seconds after the change commits (plus the length of a request that
  read the row just before). The failure is logged, and :func:`unreached` tells the caller
  (``apikey revoke`` then exits non-zero and says until when).

The secret is verified at every request, against the hash in the cached row, and expiry
is checked against the clock at every request, so an expiry date passing needs no
invalidation.

One round trip per keyed request
--------------------------------
:func:`resolve_key` reads the key's version token and cached row with one ``get_many``
(``MGET`` on Redis). Given the request, it asks for the cache entries the view will read
in the same call (:func:`pokewatch_site.caching.prefetch_keys`) and leaves them on the
request for the view.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, date, datetime, time
from enum import StrEnum
from time import monotonic
from typing import Any, cast

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import APIKey, validate_rate
from pokewatch_site import caching
from pokewatch_site.errors import InvalidInput, NotFound

CACHE_TTL = 60
# "No usable key has this prefix" is cached too, briefly: an unknown prefix would otherwise
# cost a database query on every request. Creating, un-revoking or changing a key replaces
# its version token (forget_cached_key), so such an entry never hides a new key.
MISSING_TTL = 10
# Outlives any entry tagged with it; once it lapses, older entries just stop matching.
VERSION_TTL = 24 * 60 * 60
TOUCH_INTERVAL = 60
_touched_here = caching.memo("apikey:touched")
_unreached = caching.memo("apikey:unreached")
logger = logging.getLogger(__name__)


class KeyStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    MALFORMED = "malformed"  # not "<prefix>.<secret>"


# --- services ------------------------------------------------------------------------------


def create_key(
    name: str, *, owner: str = "", expires: date | datetime | None = None, rate: str = ""
) -> tuple[APIKey, str]:
    """Create a key; returns it and the full key, which is never stored nor shown again.

    ``expires`` as a date means "usable through the end of that day (UTC)".
    """
    name, owner, rate = name.strip(), owner.strip(), rate.strip()
    _check_length("name", name, required=True)
    _check_length("owner", owner)
    try:
        validate_rate(rate)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0]) from exc
    expiry = _expiry_datetime(expires)
    if expiry is not None and expiry <= timezone.now():
        raise InvalidInput(f"The expiry date {expiry:%Y-%m-%d %H:%M} UTC is in the past.")
    key, raw = APIKey.objects.create_key(name=name, owner=owner, expiry_date=expiry, rate=rate)
    return cast(APIKey, key), raw


def revoke_key(prefix: str) -> APIKey:
    """Revoke the key with this prefix (idempotent); effective at once in every process."""
    try:
        key = APIKey.objects.get(prefix=prefix)
    except APIKey.DoesNotExist:
        raise NotFound(f'No API key has the prefix "{prefix}".') from None
    if not key.revoked:
        key.revoked = True
        key.save(update_fields=["revoked"])  # forgets the cached row (APIKey.save)
    else:  # again: a revoke that could not reach the shared cache is finished by a retry
        forget_cached_key(prefix)
    return key


def touch_last_used(key: APIKey) -> None:
    """Record a use of ``key``, writing to the database at most once a minute per key.

    A process that touched the key within the interval skips even the shared cache's
    gate: one Redis round trip fewer on almost every request.
    """
    now_mono = monotonic()
    if now_mono - _touched_here.get(key.prefix, -TOUCH_INTERVAL) < TOUCH_INTERVAL:
        return
    _touched_here[key.prefix] = now_mono
    if cache.add(f"apikey:touched:{key.prefix}", 1, TOUCH_INTERVAL):
        now = timezone.now()
        APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def forget_cached_key(prefix: str) -> bool:
    """Make any cached lookup of this key unusable, now and after the current commit.

    False if the shared cache could not be reached: other processes may then use a cached
    row for up to ``CACHE_TTL`` seconds (logged; :func:`unreached` says so after commit).
    """
    if not caching.is_shared():
        return True
    reached = _record(prefix, _bump_version(prefix))
    transaction.on_commit(lambda: _record(prefix, _bump_version(prefix)))
    return reached


def unreached(prefix: str) -> bool:
    """Whether this process's last invalidation of ``prefix`` failed to reach the shared
    cache (so other processes may use a cached row for up to ``CACHE_TTL`` seconds)."""
    return prefix in _unreached


# --- selectors -----------------------------------------------------------------------------


def resolve_key(raw_key: str, request: Any = None) -> APIKey | None:
    """The key for ``raw_key`` if it exists, matches, is not revoked and has not expired."""
    status, key = check_key(raw_key, request)
    return key if status is KeyStatus.VALID else None


def check_key(raw_key: str, request: Any = None) -> tuple[KeyStatus, APIKey | None]:
    """Whether ``raw_key`` is usable, and why not; the key when it is.

    ``revoked`` and ``expired`` are told only to whoever holds the secret: any other
    mismatch is ``unknown``. With ``request`` (DRF's), the cache entries its view will
    read are fetched in the same round trip as the key's cached row (see the module's
    docstring).
    """
    prefix, dot, _ = raw_key.partition(".")
    if not prefix or not dot:
        return KeyStatus.MALFORMED, None
    key = _cached_key(prefix, request) if caching.is_shared() else _key_row(prefix)
    status = _judge(raw_key, key)
    return status, key if status is KeyStatus.VALID else None


def key_status(raw_key: str) -> tuple[KeyStatus, APIKey | None]:
    """Why a key is or is not accepted, straight from the database (no cache); the row
    too once the secret matches (revoked and expired ones included)."""
    prefix, _, _ = raw_key.partition(".")
    key = _key_row(prefix) if prefix else None
    status = _judge(raw_key, key)
    return status, key if status is not KeyStatus.UNKNOWN else None


def _judge(raw_key: str, key: APIKey | None) -> KeyStatus:
    """The status of ``raw_key`` given the row of its prefix (None: no such row)."""
    if key is None or not key.is_valid(raw_key):
        return KeyStatus.UNKNOWN
    if key.revoked:
        return KeyStatus.REVOKED
    if key.has_expired:
        return KeyStatus.EXPIRED
    return KeyStatus.VALID


# --- helpers -------------------------------------------------------------------------------


def _key_row(prefix: str) -> APIKey | None:
    return APIKey.objects.filter(prefix=prefix).first()


def _cached_key(prefix: str, request: Any = None) -> APIKey | None:
    entry_key, version_key = cache_keys(prefix)
    also = caching.prefetch_keys(request) if request is not None else []
    # Version and entry in one atomic read (MGET on Redis), before the row: a revoke
    # committing in between replaces the version, so the entry written below is born stale.
    found = cache.get_many([version_key, entry_key, *also])
    if also:
        caching.keep(request, also, found)
    version = found.get(version_key, "")
    entry = found.get(entry_key)
    if entry is not None and entry[0] == version:
        return entry[1]  # None: no key has this prefix (cached for MISSING_TTL)
    key = _key_row(prefix)
    usable = key is not None and not key.revoked
    cache.set(entry_key, (version, key), CACHE_TTL if usable else MISSING_TTL)
    return key


def _bump_version(prefix: str) -> bool:
    """Replace the key's version token; False if the shared cache did not take it."""
    entry_key, version_key = cache_keys(prefix)
    token = uuid.uuid4().hex
    cache.set(version_key, token, VERSION_TTL)
    cache.delete(entry_key)
    # Read back: django-redis ignores a failed write (IGNORE_EXCEPTIONS), and so would we.
    return bool(cache.get(version_key) == token)


def _record(prefix: str, reached: bool) -> bool:
    if reached:
        _unreached.pop(prefix, None)
    elif prefix not in _unreached:
        _unreached[prefix] = True
        logger.warning(
            "API key %s changed, but the shared cache could not be reached: other "
            "processes may use its cached row for up to %d s",
            prefix,
            CACHE_TTL,
        )
    return reached


def cache_keys(prefix: str) -> tuple[str, str]:
    """The default cache's keys of ``prefix``'s cached row and of its version token."""
    # Hashed: the prefix comes from a request header, never put it raw into a cache key.
    digest = hashlib.sha256(prefix.encode()).hexdigest()[:32]
    return f"apikey:entry:{digest}", f"apikey:version:{digest}"


def _expiry_datetime(expires: date | datetime | None) -> datetime | None:
    if expires is None:
        return None
    if isinstance(expires, datetime):
        return expires if timezone.is_aware(expires) else expires.replace(tzinfo=UTC)
    return datetime.combine(expires, time.max, tzinfo=UTC)


def _check_length(field: str, value: str, *, required: bool = False) -> None:
    max_length = getattr(APIKey._meta.get_field(field), "max_length", None)
    if required and not value:
        raise InvalidInput(f"The key's {field} is required.")
    if max_length is not None and len(value) > max_length:
        raise InvalidInput(f"The key's {field} is longer than {max_length} characters.")
