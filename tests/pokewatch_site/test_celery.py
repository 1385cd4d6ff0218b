"""The Celery app's broker connection has a time limit: a publish (from the web, the admin
or a command) to a broker that accepts connections but never answers gives up in time."""

from __future__ import annotations

import time

import pytest
from kombu.exceptions import OperationalError

from pokewatch_site.celery import app


@pytest.mark.redis
def test_a_publish_to_a_broker_that_hangs_gives_up_in_bounded_time(settings, black_hole) -> None:
    from pipelines.tasks import train_model

    options = app.conf.broker_transport_options
    assert options["socket_timeout"] == settings.POKEWATCH_BROKER_TIMEOUT
    assert options["socket_connect_timeout"] == settings.POKEWATCH_BROKER_TIMEOUT
    attempts = app.conf.task_publish_retry_policy["max_retries"] + 1
    started = time.monotonic()
    with (
        app.connection_for_write(f"{black_hole}/0") as connection,
        pytest.raises(OperationalError),
    ):
        train_model.apply_async(args=[1], connection=connection)
    assert time.monotonic() - started < attempts * settings.POKEWATCH_BROKER_TIMEOUT + 2.0
