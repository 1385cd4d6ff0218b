from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import rest_framework_api_key.models
from django.contrib import admin
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.keys import resolve_key
from accounts.models import APIKey

CHANGELIST = "admin:accounts_apikey_changelist"
ADD = "admin:accounts_apikey_add"
SHOWN_KEY = re.compile(r'<code id="api-key">([^<]+)</code>')


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


def create_in_admin(client: Client, **fields: str) -> tuple[Any, str]:
    """Posts the add form; returns the answer and the full key it shows."""
    response = client.post(reverse(ADD), form_data(**fields))
    assert response.status_code == 200, response.content[:500]
    match = SHOWN_KEY.search(response.text)
    assert match is not None
    return response, match.group(1)


def test_if_key_is_created_in_admin_then_full_key_is_shown_once(admin_client: Client) -> None:
    response, raw = create_in_admin(admin_client, name="partner", owner="Brock", rate="60/m")
    key = APIKey.objects.get()
    assert (key.name, key.owner, key.rate) == ("partner", "Brock", "60/m")
    assert resolve_key(raw) == key
    assert "no-store" in response["Cache-Control"]
    assert "The API key for “partner”" in response.text and key.prefix in response.text
    again = admin_client.get(reverse(CHANGELIST))
    assert raw not in again.text
    assert raw not in admin_client.get(change_url(key)).text


def test_new_key_travels_in_no_cookie_message_or_session(admin_client: Client) -> None:
    response, raw = create_in_admin(admin_client, name="partner")
    secret = raw.partition(".")[2]
    assert secret not in str(response.cookies)  # no Set-Cookie carries it
    assert "messages" not in response.cookies
    assert all(secret not in morsel.value for morsel in admin_client.cookies.values())
    for session in Session.objects.all():
        assert secret not in str(session.get_decoded())
    # Nothing is left behind for the next page to show.
    following = admin_client.get(reverse(CHANGELIST))
    assert secret not in following.text and secret not in str(following.cookies)


def test_add_another_and_change_still_answer_as_usual(admin_client: Client, valid_key) -> None:
    expiry = valid_key.key.expiry_date
    response = admin_client.post(
        change_url(valid_key.key),
        form_data(
            name="renamed",
            expiry_date_0=f"{expiry:%Y-%m-%d}",
            expiry_date_1=f"{expiry:%H:%M:%S}",
        ),
    )
    assert response.status_code == 302
    assert APIKey.objects.get(pk=valid_key.key.pk).name == "renamed"


def test_admin_names_keys_by_prefix_and_no_page_or_url_carries_the_hash(
    admin_client: Client, valid_key
) -> None:
    _, raw = create_in_admin(admin_client, name="partner")
    key = APIKey.objects.get(name="partner")
    assert change_url(key) == f"/admin/accounts/apikey/{key.prefix}/change/"
    changed = admin_client.post(change_url(key), form_data(name="partner 2"))
    assert changed.status_code == 302
    digests = {k.hashed_key.rsplit("$", 1)[-1] for k in APIKey.objects.all()}
    assert all(len(digest) >= 64 for digest in digests)
    pages = {
        "changelist": admin_client.get(reverse(CHANGELIST)),
        "change": admin_client.get(change_url(key)),
        "history": admin_client.get(reverse("admin:accounts_apikey_history", args=[key.pk])),
        "delete": admin_client.get(reverse("admin:accounts_apikey_delete", args=[key.pk])),
        "bulk delete": admin_client.post(
            reverse(CHANGELIST),
            {"action": "delete_selected", "_selected_action": [key.pk, valid_key.key.pk]},
        ),
        "index (recent actions)": admin_client.get(reverse("admin:index")),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert key.prefix in page.text, name
        for digest in digests:
            assert digest[:16] not in page.text, name
    assert f"/admin/accounts/apikey/{key.prefix}/change/" in pages["index (recent actions)"].text
    for digest in digests:
        assert digest[:16] not in changed["Location"]
    assert raw not in "".join(page.text for page in pages.values())


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
