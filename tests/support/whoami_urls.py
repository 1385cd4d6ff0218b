"""URLs for the authentication tests (tests/accounts/test_authentication.py): one tiny keyed
view that tells who the request is authenticated as."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.urls import path
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import APIKeyAuthentication
from accounts.permissions import HasAPIKeyOrStaff


class WhoAmI(APIView):
    authentication_classes = [APIKeyAuthentication, SessionAuthentication]
    permission_classes = [HasAPIKeyOrStaff]

    def get(self, request: Request) -> Response:
        return Response(
            {
                "auth": type(request.auth).__name__,
                "prefix": getattr(request.auth, "prefix", None),
                "anonymous": isinstance(request.user, AnonymousUser),
                "username": getattr(request.user, "username", None),
            }
        )


urlpatterns = [path("whoami/", WhoAmI.as_view())]
