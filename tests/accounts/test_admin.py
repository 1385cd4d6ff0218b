from __future__ import annotations

import re
from datetime import timedelta

import pytest
import rest_framework_api_key.models
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.keys import resolve_key
from accounts.models import APIKey

CHANGELIST = "admin:accounts_apikey_changelist"
ADD = "admin:accounts_apikey_add"
KEY_MESSAGE = re.compile(r"The API key for (.+?) is: (\S+)\. Please store it")


def form_data(**fields: str) -> dict[str, str]:
    data = {
        "name": "partner",
        "owner": "",
        "rate": "",
        "expiry_date_0": "",
        "expiry_date_1": "",
    }
    data.update(fields)
    return data


def change_url(key: APIKey) -> str:
    return reverse("admin:accounts_apikey_change", args=[key.pk])


def test_stock_library_admin_is_not_registered_and_ours_is() -> None:
    assert not admin.site.is_registered(rest_framework_api_key.models.APIKey)
    assert admin.site.is_registered(APIKey)


def test_if_key_is_created_in_admin_then_full_key_is_shown_once(admin_client: Client) -> None:
    response = admin_client.post(
        reverse(ADD), form_data(name="partner", owner="Brock", rate="60/m"), follow=True
    )
    assert response.status_code == 200
    match = KEY_MESSAGE.search(response.text)
    assert match is not None and match.group(1) == "partner"
    raw = match.group(2)
    key = APIKey.objects.get()
    assert (key.owner, key.rate) == ("Brock", "60/m")
    assert resolve_key(raw) == key
    again = admin_client.get(reverse(CHANGELIST))
    assert raw not in again.text
    assert raw not in admin_client.get(change_url(key)).text


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"rate": "60 per minute"}, "Invalid rate"),
        ({"expiry_date_0": "2020-01-01", "expiry_date_1": "00:00:00"}, "in the past"),
    ],
)
def test_if_admin_form_is_invalid_then_no_key_is_created(
    admin_client: Client, fields, error
) -> None:
    response = admin_client.post(reverse(ADD), form_data(**fields))
    assert response.status_code == 200
    assert error in response.text
    assert not APIKey.objects.exists()


def test_changelist_shows_keys_without_secrets(
    admin_client: Client, valid_key, revoked_key
) -> None:
    APIKey.objects.filter(pk=valid_key.key.pk).update(rate="120/m", last_used_at=timezone.now())
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    for text in ("valid key", "Ash", valid_key.prefix, "120/m", "revoked key"):
        assert text in response.text
    assert valid_key.raw not in response.text


def test_changelist_search_by_owner_and_filter_revoked(
    admin_client: Client, valid_key, revoked_key
) -> None:
    by_owner = admin_client.get(reverse(CHANGELIST), {"q": "ash"})
    assert valid_key.prefix in by_owner.text and revoked_key.prefix not in by_owner.text
    by_prefix = admin_client.get(reverse(CHANGELIST), {"q": revoked_key.prefix})
    assert revoked_key.prefix in by_prefix.text and valid_key.prefix not in by_prefix.text
    revoked = admin_client.get(reverse(CHANGELIST), {"revoked__exact": "1"})
    assert revoked_key.prefix in revoked.text and valid_key.prefix not in revoked.text


def test_revoke_action_revokes_selected_keys(
    admin_client: Client, shared_cache, valid_key, make_key
) -> None:
    other = make_key("other")
    assert resolve_key(valid_key.raw) is not None  # now cached
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "revoke_selected", "_selected_action": [valid_key.key.pk]},
        follow=True,
    )
    assert "Revoked 1 API key(s)." in response.text
    assert APIKey.objects.get(pk=valid_key.key.pk).revoked
    assert not APIKey.objects.get(pk=other.key.pk).revoked
    assert resolve_key(valid_key.raw) is None
    assert resolve_key(other.raw) is not None


def test_if_revoked_checkbox_is_ticked_then_key_is_refused_at_once(
    admin_client: Client, shared_cache, valid_key
) -> None:
    assert resolve_key(valid_key.raw) is not None  # now cached
    expiry = valid_key.key.expiry_date
    response = admin_client.post(
        change_url(valid_key.key),
        form_data(
            name="valid key",
            owner="Ash",
            expiry_date_0=f"{expiry:%Y-%m-%d}",
            expiry_date_1=f"{expiry:%H:%M:%S}",
            revoked="on",
        ),
    )
    assert response.status_code == 302
    assert APIKey.objects.get(pk=valid_key.key.pk).revoked
    assert resolve_key(valid_key.raw) is None


def test_if_expiry_is_moved_to_the_past_in_admin_then_key_is_refused_at_once(
    admin_client: Client, shared_cache, valid_key
) -> None:
    assert resolve_key(valid_key.raw) is not None
    past = timezone.now() - timedelta(days=1)
    response = admin_client.post(
        change_url(valid_key.key),
        form_data(
            name="valid key",
            expiry_date_0=f"{past:%Y-%m-%d}",
            expiry_date_1=f"{past:%H:%M:%S}",
        ),
    )
    assert response.status_code == 302
    assert resolve_key(valid_key.raw) is None


def test_if_keys_are_deleted_in_bulk_then_they_are_refused_at_once(
    admin_client: Client, shared_cache, valid_key
) -> None:
    assert resolve_key(valid_key.raw) is not None
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [valid_key.key.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not APIKey.objects.exists()
    assert resolve_key(valid_key.raw) is None


def test_revoked_key_change_page_is_read_only(admin_client: Client, revoked_key) -> None:
    response = admin_client.get(change_url(revoked_key.key))
    assert response.status_code == 200
    assert 'name="revoked"' not in response.text
    assert 'name="rate"' not in response.text
