"""APIKeyAuthentication and HasAPIKeyOrStaff, on the tiny keyed view of
tests/support/whoami_urls.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import APIKey

pytestmark = pytest.mark.urls("tests.support.whoami_urls")
URL = "/whoami/"
BAD_KEY = "Invalid, revoked or expired API key."
NO_KEY = "Authentication credentials were not provided."


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def assert_unauthorized(response, detail: str) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response.json() == {"detail": detail}


def test_if_key_is_in_x_api_key_header_then_request_auth_is_the_key(api, valid_key) -> None:
    response = api.get(URL, HTTP_X_API_KEY=valid_key.raw)
    assert response.status_code == 200
    assert response.json() == {
        "auth": "APIKey",
        "prefix": valid_key.prefix,
        "anonymous": True,
        "username": "",
    }


@pytest.mark.parametrize("keyword", ["Api-Key", "api-key"])
def test_if_key_is_in_authorization_header_then_request_is_allowed(api, valid_key, keyword) -> None:
    response = api.get(URL, HTTP_AUTHORIZATION=f"{keyword} {valid_key.raw}")
    assert response.status_code == 200
    assert response.json()["prefix"] == valid_key.prefix


def test_if_no_key_is_sent_then_401_with_www_authenticate(api, db) -> None:
    assert_unauthorized(api.get(URL), NO_KEY)


def test_if_authorization_uses_another_scheme_then_401_as_without_key(api, valid_key) -> None:
    assert_unauthorized(api.get(URL, HTTP_AUTHORIZATION=f"Bearer {valid_key.raw}"), NO_KEY)


@pytest.mark.parametrize("state", ["revoked_key", "expired_key"])
def test_if_key_is_revoked_or_expired_then_401(api, request, state) -> None:
    issued = request.getfixturevalue(state)
    assert_unauthorized(api.get(URL, HTTP_X_API_KEY=issued.raw), BAD_KEY)
    assert_unauthorized(api.get(URL, HTTP_AUTHORIZATION=f"Api-Key {issued.raw}"), BAD_KEY)


@pytest.mark.parametrize("raw", ["Nokey000.abcdefghijklmnopqrstuvwxyz012345", "garbage"])
def test_if_key_is_unknown_then_401(api, db, raw) -> None:
    assert_unauthorized(api.get(URL, HTTP_X_API_KEY=raw), BAD_KEY)


def test_if_secret_is_wrong_then_401(api, valid_key) -> None:
    assert_unauthorized(api.get(URL, HTTP_X_API_KEY=f"{valid_key.prefix}.{'x' * 32}"), BAD_KEY)


def test_if_staff_session_then_allowed_without_key(admin_client) -> None:
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert response.json()["auth"] == "NoneType"
    assert response.json()["username"] == "admin"


def test_if_staff_session_sends_a_bad_key_then_401(admin_client, revoked_key) -> None:
    assert_unauthorized(admin_client.get(URL, HTTP_X_API_KEY=revoked_key.raw), BAD_KEY)


def test_if_session_is_not_staff_then_401_without_key(client, django_user_model) -> None:
    user = django_user_model.objects.create_user("collector", password="pw-collector-1")
    client.force_login(user)
    assert_unauthorized(client.get(URL), NO_KEY)


def test_if_session_is_not_staff_then_a_key_still_works(
    client, django_user_model, valid_key
) -> None:
    client.force_login(django_user_model.objects.create_user("collector"))
    assert client.get(URL, HTTP_X_API_KEY=valid_key.raw).status_code == 200


def test_if_key_is_revoked_between_requests_then_next_request_is_refused(api, valid_key) -> None:
    assert api.get(URL, HTTP_X_API_KEY=valid_key.raw).status_code == 200
    key = APIKey.objects.get(pk=valid_key.key.pk)
    key.revoked = True
    key.save()
    assert_unauthorized(api.get(URL, HTTP_X_API_KEY=valid_key.raw), BAD_KEY)


def test_if_requests_repeat_within_a_minute_then_last_used_at_is_written_once(
    api, valid_key
) -> None:
    before = timezone.now()
    assert api.get(URL, HTTP_X_API_KEY=valid_key.raw).status_code == 200
    first = APIKey.objects.get(pk=valid_key.key.pk).last_used_at
    assert first is not None and first >= before
    for _ in range(3):
        assert api.get(URL, HTTP_X_API_KEY=valid_key.raw).status_code == 200
    assert APIKey.objects.get(pk=valid_key.key.pk).last_used_at == first
    cache.delete(f"apikey:touched:{valid_key.prefix}")  # the minute has passed
    keys._touched_here.clear()  # and this process's own note of it
    assert api.get(URL, HTTP_X_API_KEY=valid_key.raw).status_code == 200
    assert APIKey.objects.get(pk=valid_key.key.pk).last_used_at > first


def test_if_key_is_refused_then_last_used_at_is_not_written(api, expired_key) -> None:
    api.get(URL, HTTP_X_API_KEY=expired_key.raw)
    assert APIKey.objects.get(pk=expired_key.key.pk).last_used_at is None


def test_if_expiry_passes_then_the_key_stops_working(api, make_key, monkeypatch) -> None:
    issued = make_key(expiry_date=timezone.now() + timedelta(hours=1))
    assert api.get(URL, HTTP_X_API_KEY=issued.raw).status_code == 200
    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert_unauthorized(api.get(URL, HTTP_X_API_KEY=issued.raw), BAD_KEY)
