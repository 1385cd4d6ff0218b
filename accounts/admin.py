"""Admin for API keys: the library's admin plus our fields.

A key is named by its prefix in every URL (its primary key, see accounts.models). A new
key is shown once, on the page that answers the add form, and never leaves that response:
no message (Django's default message storage is a signed, not encrypted, cookie), no
session, no redirect.
"""

from __future__ import annotations

from typing import Any

import rest_framework_api_key.models
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from rest_framework_api_key.admin import APIKeyModelAdmin

from accounts.keys import CACHE_TTL, revoke_key, unreached
from accounts.models import APIKey

# Where save_model() leaves a new key's full key for response_add(): this request only.
NEW_KEY_ATTRIBUTE = "pokewatch_new_api_key"

# The library registers its own concrete APIKey; ours replaces it.
if admin.site.is_registered(rest_framework_api_key.models.APIKey):
    admin.site.unregister(rest_framework_api_key.models.APIKey)


@admin.register(APIKey)
class APIKeyAdmin(APIKeyModelAdmin):
    # The library's tuples are typed by their length; ours are longer.
    list_display = (  # type: ignore[assignment]
        "name",
        "owner",
        "prefix",
        "created",
        "expiry_date",
        "_has_expired",
        "revoked",
        "last_used_at",
        "rate",
    )
    list_filter = ("revoked", "expiry_date", "created")  # type: ignore[assignment]
    search_fields = ("name", "owner", "prefix")  # type: ignore[assignment]
    fields = ("name", "owner", "rate", "expiry_date", "revoked", "prefix", "last_used_at")
    actions = ("revoke_selected",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        readonly = (*super().get_readonly_fields(request, obj), "last_used_at")
        if obj is not None and obj.revoked:
            readonly = (*readonly, "owner", "rate")
        return readonly

    def save_model(
        self, request: HttpRequest, obj: Any, form: Any = None, change: bool = False
    ) -> None:
        # The library's save_model() puts the new key in a message: it would travel in the
        # messages cookie. The key is generated the library's way all the same.
        if not change:
            setattr(request, NEW_KEY_ATTRIBUTE, APIKey.objects.assign_key(obj))
        obj.save()

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The new key, once: this page is the only place it is ever shown (no-store)."""
        raw_key = getattr(request, NEW_KEY_ATTRIBUTE, None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API key created",
            "key": obj,
            "raw_key": raw_key,
        }
        return TemplateResponse(request, "admin/accounts/apikey/created.html", context)

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        prefixes = list(queryset.filter(revoked=False).values_list("prefix", flat=True))
        for prefix in prefixes:
            revoke_key(prefix)
        self.message_user(request, f"Revoked {len(prefixes)} API key(s).", messages.SUCCESS)
        if unreachable := [prefix for prefix in prefixes if unreached(prefix)]:
            self.message_user(
                request,
                f"The shared cache (Redis) could not be reached: other processes may accept "
                f"{', '.join(unreachable)} for up to {CACHE_TTL} s (or run manage.py apikey revoke "
                "PREFIX again once Redis answers).",
                messages.WARNING,
            )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        # One by one, so that each key's cached lookup is invalidated (model delete()).
        for key in queryset:
            key.delete()
