"""Who may call the keyed API: a valid API key, or a staff member's session."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import APIKey
from pokewatch_site.metrics import AUTH_FAILURES


class HasAPIKeyOrStaff(BasePermission):
    """Allowed with an API key (see ``APIKeyAuthentication``) or a staff session.

    Otherwise 401 (``WWW-Authenticate: Api-Key``), never 403: with nobody authenticated,
    DRF's ``permission_denied`` raises ``NotAuthenticated`` itself; a session of a
    non-staff user is no substitute for a key, so that case raises it here.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, APIKey):
            return True
        user = request.user
        if user is None or not user.is_authenticated:
            AUTH_FAILURES.labels(reason="missing").inc()
            return False
        if user.is_staff:
            return True
        raise NotAuthenticated()
