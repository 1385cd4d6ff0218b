"""URLs for the authentication tests: one tiny keyed view."""

from django.urls import path

from tests.accounts.test_authentication import WhoAmI

urlpatterns = [path("whoami/", WhoAmI.as_view())]
