"""API keys: the library's abstract key plus who it is for, its own rate and its last use.

The library (``rest_framework_api_key``) owns key generation, hashing and verification;
:mod:`accounts.keys` holds the services and selectors built on it.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey

RATE_PATTERN = re.compile(r"^[1-9][0-9]*/[smhd]$")
RATE_HELP = (
    'Requests allowed per period, like "120/m": a positive whole number, "/" and one of '
    "s, m, h, d (second, minute, hour, day). Blank: the endpoint group's default."
)


def validate_rate(value: str) -> None:
    """Accept ``""`` (use the default) or ``N/s``, ``N/m``, ``N/h``, ``N/d``."""
    if value and not RATE_PATTERN.fullmatch(value):
        raise ValidationError(
            f'Invalid rate "{value}": expected a positive whole number, "/" and one of '
            's, m, h, d (per second, minute, hour, day), e.g. "120/m".',
            code="invalid_rate",
        )


class APIKey(AbstractAPIKey):
    # The prefix (public: listed, named by `apikey revoke`) is the primary key, so admin
    # URLs, forms and log entries name a key by it. The library's ``id``, "<prefix>.<hash>",
    # stays a unique column it fills, but no longer travels in URLs or access logs.
    id = models.CharField(max_length=150, unique=True, editable=False)
    prefix = models.CharField(max_length=8, primary_key=True, editable=False)
    owner = models.CharField(max_length=100, blank=True, help_text="Who the key is for.")
    rate = models.CharField(
        max_length=20, blank=True, validators=[validate_rate], help_text=RATE_HELP
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    # objects: the library's APIKeyManager, inherited from AbstractAPIKey.

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def clean(self) -> None:
        super().clean()
        if self._state.adding and self.expiry_date and self.expiry_date < timezone.now():
            raise ValidationError({"expiry_date": "A new key cannot expire in the past."})

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        self._initial_revoked = self.revoked
        _forget(self.prefix)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        prefix = self.prefix  # the primary key: delete() sets it to None
        result = super().delete(*args, **kwargs)
        _forget(prefix)
        return result


def _forget(prefix: str) -> None:
    # Imported here: accounts.keys imports this module.
    from accounts.keys import forget_cached_key

    forget_cached_key(prefix)
