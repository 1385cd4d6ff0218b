from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.keys import resolve_key
from accounts.models import APIKey


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_prints_the_full_key_alone_on_the_last_line_only(db) -> None:
    output = run("create", "partner", "--owner", "Misty", "--rate", "120/m")
    lines = output.splitlines()
    raw = lines[-1]
    key = APIKey.objects.get()
    assert raw.startswith(f"{key.prefix}.") and raw == raw.strip()
    assert output.count(raw) == 1
    assert resolve_key(raw) == key
    assert (key.name, key.owner, key.rate) == ("partner", "Misty", "120/m")
    assert any(key.prefix in line for line in lines[:-1])


def test_create_with_expiry_date_sets_end_of_that_day(db) -> None:
    day = timezone.now().date() + timedelta(days=10)
    output = run("create", "partner", "--expires", day.isoformat())
    key = APIKey.objects.get()
    assert key.expiry_date.date() == day
    assert f"{day.isoformat()} 23:59 UTC" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expires", "2020-01-01"], "in the past"),
        (["--expires", "31/12/2030"], "argument --expires: must be a YYYY-MM-DD date"),
        (["--rate", "120/minute"], 'Invalid rate "120/minute"'),
        (["--rate", "fast"], 'Invalid rate "fast"'),
    ],
)
def test_if_create_arguments_are_bad_then_command_error(db, args, message) -> None:
    with pytest.raises(CommandError, match=message):
        run("create", "partner", *args)
    assert not APIKey.objects.exists()


def test_list_shows_every_key_but_never_a_full_key(valid_key, revoked_key, expired_key) -> None:
    APIKey.objects.filter(pk=valid_key.key.pk).update(rate="30/s", last_used_at=timezone.now())
    output = run("list")
    for issued in (valid_key, revoked_key, expired_key):
        assert issued.prefix in output
        assert issued.key.name in output
        assert issued.raw not in output
        assert issued.raw.partition(".")[2] not in output
    assert "PREFIX" in output and "LAST USED" in output
    assert "Ash" in output and "30/s" in output


def test_if_there_are_no_keys_then_list_says_so(db) -> None:
    assert run("list").strip() == "No API keys."


def test_revoke_revokes_the_key(valid_key) -> None:
    assert valid_key.prefix in run("revoke", valid_key.prefix)
    assert APIKey.objects.get(pk=valid_key.key.pk).revoked
    assert resolve_key(valid_key.raw) is None


def test_if_prefix_is_unknown_then_revoke_fails(db) -> None:
    with pytest.raises(CommandError, match='No API key has the prefix "nope1234"'):
        run("revoke", "nope1234")


def test_if_key_is_valid_then_check_says_valid_without_echoing_it(valid_key) -> None:
    output = run("check", valid_key.raw)
    assert output.startswith("valid:")
    assert valid_key.prefix in output
    assert valid_key.raw not in output


def test_check_reads_the_key_from_stdin_when_given_a_dash(valid_key, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(valid_key.raw + "\n"))
    assert run("check", "-").startswith("valid:")


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_if_key_is_revoked_or_expired_then_check_fails_and_says_why(request, state) -> None:
    issued = request.getfixturevalue(f"{state}_key")
    with pytest.raises(CommandError) as excinfo:
        run("check", issued.raw)
    message = str(excinfo.value)
    assert message.startswith(f"{state}:") and issued.prefix in message
    assert issued.raw not in message
    assert excinfo.value.returncode != 0


def test_if_key_is_unknown_then_check_fails(missing_raw_key) -> None:
    with pytest.raises(CommandError, match="^unknown:") as excinfo:
        run("check", missing_raw_key)
    assert missing_raw_key not in str(excinfo.value)


def test_if_no_subcommand_then_usage_error(db) -> None:
    with pytest.raises(CommandError):
        run()


# --- revoke while this process cannot reach Redis --------------------------------------


@pytest.mark.redis
def test_if_redis_is_unreachable_then_revoke_exits_non_zero_and_says_the_bound(
    settings, valid_key, unreachable_redis
) -> None:
    from django.core.cache import cache

    from accounts.keys import CACHE_TTL, cache_keys
    from tests.support.faults import redis_caches

    shared = settings.CACHES
    assert resolve_key(valid_key.raw) == valid_key.key  # cached in the shared Redis
    settings.CACHES = redis_caches(unreachable_redis, 0.2)  # this process loses Redis
    with pytest.raises(CommandError) as raised:
        call_command("apikey", "revoke", valid_key.prefix, stdout=io.StringIO())
    message = str(raised.value)
    assert "\n" not in message
    assert f"Revoked API key {valid_key.prefix} in the database" in message
    assert "may accept it until" in message and f"({CACHE_TTL} s)" in message
    assert APIKey.objects.get(prefix=valid_key.prefix).revoked

    # Another process, which reaches Redis, still has the row cached: for CACHE_TTL at most.
    settings.CACHES = shared
    assert resolve_key(valid_key.raw) == valid_key.key
    entry_key, _ = cache_keys(valid_key.prefix)
    assert 0 < cache.ttl(entry_key) <= CACHE_TTL  # type: ignore[attr-defined]
    # Revoking again once Redis answers makes it effective everywhere at once.
    out = io.StringIO()
    call_command("apikey", "revoke", valid_key.prefix, stdout=out)
    assert out.getvalue().startswith(f"Revoked API key {valid_key.prefix}")
    assert resolve_key(valid_key.raw) is None
