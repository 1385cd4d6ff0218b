from __future__ import annotations

from django.test import RequestFactory

from accounts.login import client_ip_address
from accounts.ratelimit import client_ip


def test_client_ip_address_is_the_rate_limits_client_ip() -> None:
    request = RequestFactory().get("/admin/login/", REMOTE_ADDR="198.51.100.4")
    assert client_ip_address(request) == client_ip(request) == "198.51.100.4"


def test_if_a_request_has_no_address_then_axes_gets_none() -> None:
    request = RequestFactory().get("/admin/login/")
    del request.META["REMOTE_ADDR"]
    assert client_ip_address(request) is None
    request.META["REMOTE_ADDR"] = ""  # a Unix socket
    assert client_ip_address(request) is None
