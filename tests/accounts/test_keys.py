from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import keys
from accounts.keys import (
    KeyStatus,
    create_key,
    key_status,
    resolve_key,
    revoke_key,
    touch_last_used,
)
from accounts.models import APIKey, validate_rate
from pokewatch_site import caching
from pokewatch_site.errors import InvalidInput, NotFound

# --- create_key ----------------------------------------------------------------------------


def test_create_key_returns_the_key_once_and_stores_only_its_hash(db) -> None:
    key, raw = create_key("partner", owner="Misty", rate="120/m")
    assert raw.startswith(f"{key.prefix}.")
    stored = APIKey.objects.get(pk=key.pk)
    assert raw not in (stored.hashed_key, stored.id)
    assert (stored.name, stored.owner, stored.rate) == ("partner", "Misty", "120/m")
    assert stored.expiry_date is None
    assert resolve_key(raw) == stored


def test_if_expires_is_a_date_then_the_key_works_through_that_day(db) -> None:
    day = timezone.now().date() + timedelta(days=3)
    key, _ = create_key("k", expires=day)
    assert key.expiry_date == datetime(day.year, day.month, day.day, 23, 59, 59, 999999, UTC)


def test_if_expires_is_today_then_it_is_accepted(db) -> None:
    key, raw = create_key("k", expires=timezone.now().date())
    assert resolve_key(raw) == key


@pytest.mark.parametrize(
    "expires", [date(2020, 1, 1), timezone.now() - timedelta(seconds=1), datetime(2020, 1, 1)]
)
def test_if_expiry_is_in_the_past_then_create_key_refuses(db, expires) -> None:
    with pytest.raises(InvalidInput, match="in the past"):
        create_key("k", expires=expires)
    assert not APIKey.objects.exists()


@pytest.mark.parametrize("rate", ["120/minute", "0/m", "-1/m", "abc", "120", "/m", "1.5/s"])
def test_if_rate_is_malformed_then_create_key_refuses(db, rate) -> None:
    with pytest.raises(InvalidInput, match=r'expected a positive whole number.*"120/m"'):
        create_key("k", rate=rate)
    assert not APIKey.objects.exists()


@pytest.mark.parametrize("rate", ["", "5/s", "120/m", "1000/h", "20000/d"])
def test_well_formed_rates_are_accepted(rate) -> None:
    validate_rate(rate)


def test_if_rate_is_malformed_then_model_validation_names_the_field(db) -> None:
    key = APIKey(name="k", rate="10 per minute")
    with pytest.raises(ValidationError) as excinfo:
        key.full_clean(exclude=["id", "prefix", "hashed_key"])
    assert "rate" in excinfo.value.message_dict


@pytest.mark.parametrize(
    ("name", "owner"), [("", ""), ("   ", ""), ("x" * 51, ""), ("k", "o" * 101)]
)
def test_if_name_or_owner_is_blank_or_too_long_then_create_key_refuses(db, name, owner) -> None:
    with pytest.raises(InvalidInput):
        create_key(name, owner=owner)


# --- revoke_key ----------------------------------------------------------------------------


def test_revoke_key_revokes(valid_key) -> None:
    assert revoke_key(valid_key.prefix).revoked
    assert APIKey.objects.get(pk=valid_key.key.pk).revoked
    assert resolve_key(valid_key.raw) is None


def test_if_key_is_already_revoked_then_revoke_key_is_a_no_op(revoked_key) -> None:
    assert revoke_key(revoked_key.prefix).revoked


def test_if_prefix_is_unknown_then_revoke_key_raises_not_found(db) -> None:
    with pytest.raises(NotFound, match='"nope1234"'):
        revoke_key("nope1234")


def test_if_revoked_key_is_unrevoked_then_save_refuses(revoked_key) -> None:
    key = APIKey.objects.get(pk=revoked_key.key.pk)
    key.revoked = False
    with pytest.raises(ValidationError):
        key.save()


# --- resolve_key and key_status ------------------------------------------------------------


def test_if_key_is_valid_then_resolve_key_returns_it(valid_key) -> None:
    assert resolve_key(valid_key.raw) == valid_key.key


@pytest.mark.parametrize("state", ["revoked_key", "expired_key"])
def test_if_key_is_revoked_or_expired_then_resolve_key_returns_none(request, state) -> None:
    assert resolve_key(request.getfixturevalue(state).raw) is None


@pytest.mark.parametrize("raw", ["", "no-dot", ".secret", "Nokey000.abc"])
def test_if_key_is_missing_or_malformed_then_resolve_key_returns_none(db, raw) -> None:
    assert resolve_key(raw) is None


def test_if_secret_is_wrong_then_resolve_key_returns_none(valid_key) -> None:
    assert resolve_key(f"{valid_key.prefix}.{'x' * 32}") is None


def test_key_status_of_each_state(valid_key, revoked_key, expired_key, missing_raw_key) -> None:
    assert key_status(valid_key.raw) == (KeyStatus.VALID, valid_key.key)
    assert key_status(revoked_key.raw) == (KeyStatus.REVOKED, revoked_key.key)
    assert key_status(expired_key.raw) == (KeyStatus.EXPIRED, expired_key.key)
    assert key_status(missing_raw_key) == (KeyStatus.UNKNOWN, None)
    assert key_status(f"{valid_key.prefix}.wrong") == (KeyStatus.UNKNOWN, None)
    assert key_status("") == (KeyStatus.UNKNOWN, None)


# --- caching -------------------------------------------------------------------------------


def test_if_cache_is_local_memory_then_lookups_are_not_cached(
    local_cache, valid_key, django_assert_num_queries
) -> None:
    assert not caching.is_shared()
    for _ in range(2):
        with django_assert_num_queries(1):
            assert resolve_key(valid_key.raw) == valid_key.key


def test_if_cache_is_shared_then_lookups_are_cached(
    shared_cache, valid_key, django_assert_num_queries
) -> None:
    assert caching.is_shared()
    with django_assert_num_queries(1):
        assert resolve_key(valid_key.raw) == valid_key.key
    with django_assert_num_queries(0):
        assert resolve_key(valid_key.raw) == valid_key.key
        assert resolve_key(f"{valid_key.prefix}.wrong") is None


def test_if_cached_key_is_revoked_then_it_is_refused_at_once(shared_cache, valid_key) -> None:
    assert resolve_key(valid_key.raw) is not None
    revoke_key(valid_key.prefix)
    assert resolve_key(valid_key.raw) is None


def test_if_cached_key_gets_an_expiry_in_the_past_then_it_is_refused_at_once(
    shared_cache, valid_key
) -> None:
    assert resolve_key(valid_key.raw) is not None
    key = APIKey.objects.get(pk=valid_key.key.pk)
    key.expiry_date = timezone.now() - timedelta(seconds=1)
    key.save()
    assert resolve_key(valid_key.raw) is None


def test_if_cached_key_expires_then_it_is_refused_without_invalidation(
    shared_cache, make_key, monkeypatch
) -> None:
    issued = make_key(expiry_date=timezone.now() + timedelta(hours=1))
    assert resolve_key(issued.raw) is not None
    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert resolve_key(issued.raw) is None


def test_if_cached_key_is_deleted_then_it_is_refused_at_once(shared_cache, valid_key) -> None:
    assert resolve_key(valid_key.raw) is not None
    APIKey.objects.get(pk=valid_key.key.pk).delete()
    assert resolve_key(valid_key.raw) is None


def test_if_revoke_lands_between_lookup_and_caching_then_the_entry_is_unusable(
    shared_cache, valid_key, monkeypatch
) -> None:
    """A request reads the row, a revoke commits, then the request caches what it read."""
    read_row = keys._key_row

    def read_then_revoke(prefix: str) -> APIKey | None:
        row = read_row(prefix)
        revoke_key(prefix)
        return row

    monkeypatch.setattr(keys, "_key_row", read_then_revoke)
    assert resolve_key(valid_key.raw) is not None  # the request in flight still passes
    monkeypatch.setattr(keys, "_key_row", read_row)
    assert resolve_key(valid_key.raw) is None


# --- touch_last_used -----------------------------------------------------------------------


def test_touch_last_used_writes_at_most_once_a_minute(valid_key, django_assert_num_queries) -> None:
    key = valid_key.key
    with django_assert_num_queries(1):
        touch_last_used(key)
    first = APIKey.objects.get(pk=key.pk).last_used_at
    assert first is not None and key.last_used_at == first
    with django_assert_num_queries(0):
        touch_last_used(key)
    cache.delete(f"apikey:touched:{key.prefix}")  # a minute later
    keys._touched_here.clear()  # and this process's own note of it
    touch_last_used(key)
    assert APIKey.objects.get(pk=key.pk).last_used_at > first
