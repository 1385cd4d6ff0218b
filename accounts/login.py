"""Admin login throttling (django-axes, configured in settings): who a login attempt is from."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from accounts.ratelimit import client_ip


def client_ip_address(request: HttpRequest) -> str | None:
    """The client IP by the rate limits' rule (``AXES_CLIENT_IP_CALLABLE``).

    None when there is no address (a login made in code, such as ``Client.force_login``,
    or a server on a Unix socket): django-axes stores it in an IP address column.
    """
    address = client_ip(request)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address
