"""Admin login throttling (django-axes, configured in settings): per username and client IP."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.support import ROOT

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.org", PASSWORD)


def log_in(client: Client, password: str, ip: str = "203.0.113.7", username: str = "boss"):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, follow=False
    )


def is_logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def fail_until_locked(client: Client, ip: str = "203.0.113.7") -> None:
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        response = log_in(client, f"wrong {attempt}", ip)
        if attempt < settings.AXES_FAILURE_LIMIT:
            assert response.status_code == 200, attempt  # the form again, with its error
            assert "Please enter the correct username and password" in response.text
        else:
            assert response.status_code == 429


def test_if_passwords_keep_failing_then_the_right_one_is_refused_during_the_cool_off(
    boss,
) -> None:
    client = Client()
    fail_until_locked(client)
    response = log_in(client, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed logins" in response.text
    assert "15 minutes" in response.text  # the default cool-off, in words
    assert "sessionid" not in response.cookies
    assert not is_logged_in(client)


def test_lockout_is_per_username_and_ip(boss, django_user_model) -> None:
    fail_until_locked(Client())
    elsewhere = Client()
    assert log_in(elsewhere, PASSWORD, ip="198.51.100.9").status_code == 302
    assert is_logged_in(elsewhere)
    django_user_model.objects.create_superuser("deputy", "d@example.org", PASSWORD)
    colleague = Client()
    assert log_in(colleague, PASSWORD, username="deputy").status_code == 302
    assert is_logged_in(colleague)


def test_if_the_cool_off_has_passed_then_the_right_password_logs_in(boss) -> None:
    client = Client()
    fail_until_locked(client)
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    assert log_in(client, PASSWORD).status_code == 302
    assert is_logged_in(client)


def test_if_a_login_succeeds_then_earlier_failures_are_forgotten(boss) -> None:
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, f"wrong {attempt}").status_code == 200
    assert log_in(client, PASSWORD).status_code == 302
    assert not AccessAttempt.objects.exists()


def settings_of(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds())"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "pokewatch_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_limit_and_cool_off_come_from_the_environment() -> None:
    result = settings_of(POKEWATCH_LOGIN_FAILURE_LIMIT="3", POKEWATCH_LOGIN_COOLOFF_MINUTES="60")
    assert result.stdout.split() == ["3", "3600.0"], result.stderr


def test_if_the_limit_is_not_positive_then_startup_is_refused() -> None:
    result = settings_of(POKEWATCH_LOGIN_FAILURE_LIMIT="0")
    assert result.returncode != 0
    assert "POKEWATCH_LOGIN_FAILURE_LIMIT" in result.stderr
