from __future__ import annotations

from django.test import RequestFactory

from accounts.login import client_ip_address


def test_client_ip_address_follows_the_rate_limits_rule(settings) -> None:
    request = RequestFactory().get("/admin/login/", REMOTE_ADDR="10.0.0.2")
    request.META["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
    settings.POKEWATCH_TRUSTED_PROXY = False
    assert client_ip_address(request) == "10.0.0.2"


def test_if_a_request_has_no_address_then_axes_gets_none() -> None:
    request = RequestFactory().get("/admin/login/")
    del request.META["REMOTE_ADDR"]
    assert client_ip_address(request) is None
    request.META["REMOTE_ADDR"] = ""  # a Unix socket
    assert client_ip_address(request) is None
