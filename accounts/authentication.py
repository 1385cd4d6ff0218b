"""DRF authentication by API key: ``X-API-Key: <key>`` or ``Authorization: Api-Key <key>``."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_api_key.permissions import KeyParser

from accounts.keys import check_key, touch_last_used
from accounts.models import APIKey
from pokewatch_site.metrics import AUTH_FAILURES

DEFAULT_HEADER = "HTTP_X_API_KEY"


class BothHeadersKeyParser(KeyParser):
    """The library's parser reads *either* its custom header *or* ``Authorization``; we
    accept both, the custom header (``API_KEY_CUSTOM_HEADER``, default ``X-API-Key``) first.
    """

    def get(self, request: HttpRequest | Request) -> str | None:
        header = getattr(settings, "API_KEY_CUSTOM_HEADER", None) or DEFAULT_HEADER
        key = self.get_from_header(request, header) or self.get_from_authorization(request)
        return key.strip() if key else None


class APIKeyAuthentication(BaseAuthentication):
    """``request.auth`` is the :class:`~accounts.models.APIKey`, ``request.user`` anonymous.

    No key sent: ``None`` (other authenticators may run). A key that is unknown, revoked
    or expired: 401 with ``WWW-Authenticate: Api-Key``. List this class first in a view's
    ``authentication_classes``: DRF takes the ``WWW-Authenticate`` value from the first.
    """

    keyword = KeyParser.keyword
    key_parser = BothHeadersKeyParser()

    def authenticate(self, request: Request) -> tuple[AnonymousUser, APIKey] | None:
        raw_key = self.key_parser.get(request)
        if not raw_key:
            return None
        # With the request: the view's cache entries come back in the same round trip.
        status, key = check_key(raw_key, request)
        if key is None:
            AUTH_FAILURES.labels(reason=status.value).inc()
            raise AuthenticationFailed("Invalid, revoked or expired API key.")
        touch_last_used(key)
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
