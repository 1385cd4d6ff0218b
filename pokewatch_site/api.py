"""The API's shared plumbing: pagination, content negotiation and the one error shape.

Every app's views use these (``REST_FRAMEWORK`` in settings names them); they know
nothing of any app.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django_ratelimit.exceptions import Ratelimited
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from pokewatch_site.errors import PokeWatchError

logger = logging.getLogger(__name__)

# The one error shape, for the schema of every view's error responses.
ERROR = inline_serializer("Error", {"detail": serializers.CharField()})


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class StaffBrowsableAPIRenderer(BrowsableAPIRenderer):
    """The browsable API, offered only to logged-in staff (see StaffOnlyBrowsableNegotiation)."""


class StaffOnlyBrowsableNegotiation(DefaultContentNegotiation):
    """Everyone but logged-in staff gets JSON, whatever their Accept header says."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        if not _staff_session(request):
            renderers = [r for r in renderers if not isinstance(r, BrowsableAPIRenderer)]
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            return renderers[0], renderers[0].media_type


def _staff_session(request: Request) -> bool:
    """Whether the request comes from a logged-in staff member's session (not an API key).

    Without a session cookie there is no session user: answered without loading one.
    """
    if settings.SESSION_COOKIE_NAME not in request._request.COOKIES:
        return False
    user = getattr(request._request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing with 400 what it would let through as a 500.

    * A charset that is no text encoding (``charset=bz2``, ``zlib``, ``rot13``): Python's
      codecs would decompress or transform the body (a 64 KiB bz2 body is gigabytes).
    * Nesting too deep for the parser (``RecursionError``: a body of 40 KB of ``[``).
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        if not is_text_encoding(encoding):
            raise exceptions.ParseError(f"Unsupported charset {encoding!r}: send UTF-8 JSON.")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


def is_text_encoding(encoding: str) -> bool:
    """Whether ``encoding`` names a text codec (``bytes.decode`` refuses the others)."""
    try:
        b"x".decode(encoding)
    except LookupError:  # unknown, or a bytes-to-bytes / str-to-str codec
        return False
    except ValueError:  # a text codec that cannot decode "x" alone (utf-16, idna)
        return True
    return True


def suspicious_detail(exc: SuspiciousOperation) -> str:
    """The client's side of a SuspiciousOperation (Django's message names settings)."""
    if isinstance(exc, TooManyFieldsSent):
        return f"Too many query or form fields: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}."
    return "Bad request."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error as ``{"detail": "..."}`` (validation errors name their field), in
    JSON (or the staff's browsable API), even where the view renders something else."""
    _errors_in_json(context.get("request"))
    if isinstance(exc, PokeWatchError):
        return Response({"detail": exc.detail}, status=exc.status_code)
    if isinstance(exc, SuspiciousOperation) and not isinstance(exc, RequestDataTooBig):
        # TooManyFieldsSent (over DATA_UPLOAD_MAX_NUMBER_FIELDS query or form fields) and
        # the like: the client's fault, so a 400 and one log line, not a 500 and tracebacks.
        logger.warning("refused a suspicious request: %s: %s", type(exc).__name__, exc)
        return Response({"detail": suspicious_detail(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Ratelimited):
        exc = exceptions.Throttled(detail="Rate limit exceeded.")
    elif isinstance(exc, exceptions.Throttled):
        exc = _worded(exc, context)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body too large."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    # Imported here: rest_framework.views reads the renderer settings, which name this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": _flatten(exc.detail), "errors": exc.detail}
    return response


def _errors_in_json(request: Request | None) -> None:
    """An error of a view that renders another format (the schema's YAML) is JSON."""
    if request is None:
        return
    renderer = getattr(request, "accepted_renderer", None)  # None: failed before negotiation
    if not isinstance(renderer, JSONRenderer | BrowsableAPIRenderer):
        request.accepted_renderer = JSONRenderer()  # type: ignore[union-attr]
        request.accepted_media_type = JSONRenderer.media_type  # type: ignore[union-attr]


def _worded(exc: exceptions.Throttled, context: dict[str, Any]) -> exceptions.Throttled:
    """DRF's "Request was throttled." with the limit that was hit and the wait."""
    from accounts.ratelimit import retry_after, usage_of  # at call time: loads with settings

    request = context.get("request")
    usage = usage_of(request) if request is not None else None
    if not usage:
        return exc
    if not usage["limit"]:  # RATELIMIT_FAIL_OPEN off and the counters unreachable
        return exceptions.Throttled(
            detail="Rate limits cannot be checked right now; try again shortly."
        )
    return exceptions.Throttled(
        detail=f"Rate limit exceeded ({usage['limit']} requests per window). "
        f"Expected available in {retry_after(usage)} seconds."
    )


def _flatten(detail: Any, prefix: str = "") -> str:
    if isinstance(detail, dict):
        parts = [
            _flatten(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
            for key, value in detail.items()
        ]
        return "; ".join(p for p in parts if p)
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            text = " ".join(str(item) for item in detail)
            return f"{prefix}: {text}" if prefix and prefix != "non_field_errors" else text
        return "; ".join(_flatten(item, f"{prefix}[{i}]") for i, item in enumerate(detail) if item)
    return f"{prefix}: {detail}" if prefix and prefix != "non_field_errors" else str(detail)
