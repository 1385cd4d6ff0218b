"""Request ids on every response and log line; JSON errors for everything under /api/.

Also the request-level hardening of the API: HTTPS refused with JSON rather than
redirected, keyed answers private to their key, and (a WSGI middleware, before Django)
chunked bodies made visible to Django and non-text charsets refused.
"""

from __future__ import annotations

import codecs
import contextvars
import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, SuspiciousOperation
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware import security
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import parse_header_parameters
from django.views import defaults

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def current_request_id() -> str:
    return _request_id.get()


class RequestIDLogFilter(logging.Filter):
    """Adds ``request_id`` to every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestIDMiddleware:
    """Echo a sane client ``X-Request-ID`` or make one; expose it to logs and the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # Not reset on the way out: Django logs 4xx/5xx after the middleware returns.
        # request_finished puts "-" back once the response is done.
        _request_id.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def _clear_request_id(**kwargs: object) -> None:
    _request_id.set("-")


request_finished.connect(_clear_request_id, dispatch_uid="pokewatch-clear-request-id")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


# The headers that carry an API key (accounts.authentication reads the same two).
KEY_HEADERS = ("X-API-Key", "Authorization")


class APIHTTPSOnlyMiddleware:
    """Before Django's SecurityMiddleware: under /api/, plain HTTP that it would redirect is
    refused with a JSON 403 instead.

    A redirect would come too late: the key has already crossed the network in clear, and
    a client that follows redirects would keep sending it so, never noticing. A Host not
    in ALLOWED_HOSTS is a JSON 400 here (Django's debug page with ``DEBUG=1``). Django's
    own middleware stays in ``MIDDLEWARE`` (headers, the admin's redirect, its checks).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.security = security.SecurityMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not _is_api(request):
            return self.get_response(request)
        try:
            redirect = self.security.process_request(request)  # None unless it would redirect
        except DisallowedHost:
            return _bad_host()
        if redirect is not None:
            return JsonResponse(
                {
                    "detail": "This API answers over HTTPS only. A key sent with this request "
                    "crossed the network unencrypted: revoke it and use a new one over HTTPS."
                },
                status=403,
            )
        return self.get_response(request)


class APIErrorMiddleware:
    """Under /api/: refuse bad hosts and oversized bodies with JSON 4xx,
    turn crashes into a JSON 500, and mark keyed answers private to their key."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not _is_api(request):
            return self.get_response(request)
        refused = _refused(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        # An answer may depend on the key: a shared cache must never serve it to another
        # client, and a client's own cache must revalidate it (ETag, If-None-Match).
        patch_vary_headers(response, KEY_HEADERS)
        if _carries_credentials(request):
            patch_cache_control(response, private=True, no_cache=True)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_api(request):
            return None
        if isinstance(exception, SuspiciousOperation):  # Django's own 400s, never a 500
            from pokewatch_site.api import suspicious_detail

            logger.warning(
                "refused a suspicious request: %s: %s", type(exception).__name__, exception
            )
            return JsonResponse({"detail": suspicious_detail(exception)}, status=400)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(
            {"detail": "Internal server error.", "request_id": current_request_id()}, status=500
        )


def _refused(request: HttpRequest) -> HttpResponse | None:
    """A JSON 4xx for a request no view should see, else None."""
    try:
        request.get_host()
    except DisallowedHost:
        return _bad_host()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and length > limit:
        return _too_large(limit)
    return None


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse({"detail": f"Request body too large: at most {limit} bytes."}, status=413)


def _bad_host() -> JsonResponse:
    # One line, not Django's traceback on django.security.DisallowedHost.
    logger.warning("refused a request for a host not in ALLOWED_HOSTS")
    return JsonResponse({"detail": "Bad request."}, status=400)


def _carries_credentials(request: HttpRequest) -> bool:
    """Whether the request sent an API key or a session cookie."""
    header = getattr(settings, "API_KEY_CUSTOM_HEADER", None) or "HTTP_X_API_KEY"
    return bool(
        request.META.get(header)
        or request.META.get("HTTP_AUTHORIZATION")
        or settings.SESSION_COOKIE_NAME in request.COOKIES
    )


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a ``Host`` not in ALLOWED_HOSTS, other suspicious requests); JSON under
    /api/, Django's own page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


class WSGIRequestGuard:
    """WSGI middleware: what must be settled before Django builds its request.

    * **A charset that is no text encoding** (``Content-Type: …; charset=bz2``, ``zlib``,
      ``rot13``): Django adopts it to decode the query string and the body, and fails
      (``LookupError`` while building the request: a 500 before any middleware) or, worse,
      decompresses the body (a 64 KiB bz2 body is gigabytes). Refused with a JSON 400.
    * **Chunked bodies.** Django reads a body only up to ``CONTENT_LENGTH``, which a
      ``Transfer-Encoding: chunked`` request has not: its body was silently dropped (a valid
      chunked POST got "card_id: This field is required."). When the server has de-chunked
      the body and marks its end (``wsgi.input_terminated``, set by gunicorn), this reads
      up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` + 1 bytes: more is a JSON 413; otherwise the
      body is handed on with its length. Other servers' chunked requests pass unchanged.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        charset = _charset(environ.get("CONTENT_TYPE", ""))
        if charset and not _known_text_encoding(charset):
            detail = f"Unsupported charset {charset!r}: send UTF-8."
            return _wsgi_json(start_response, "400 Bad Request", detail)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            body = environ["wsgi.input"].read(-1 if limit is None else limit + 1)
            if limit is not None and len(body) > limit:
                return _wsgi_json(
                    start_response,
                    "413 Request Entity Too Large",
                    f"Request body too large: at most {limit} bytes.",
                    # The rest of the body is never read: the connection cannot be reused.
                    [("Connection", "close")],
                )
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _charset(content_type: str) -> str:
    return str(parse_header_parameters(content_type)[1].get("charset", "")).strip()


def _known_text_encoding(charset: str) -> bool:
    """Unknown charsets pass (Django ignores them: UTF-8); known ones must decode text."""
    from pokewatch_site.api import is_text_encoding

    try:
        codecs.lookup(charset)
    except LookupError:
        return True
    return is_text_encoding(charset)


def _wsgi_json(
    start_response: Callable[..., Any],
    status: str,
    detail: str,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    payload = json.dumps({"detail": detail}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *(headers or []),
        ],
    )
    return [payload]
