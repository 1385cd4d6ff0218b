"""The API against its own OpenAPI schema (``/api/schema/``), with schemathesis.

Schemathesis generates requests for every operation of the schema (valid ones and, in its
coverage phase, invalid ones) and sends them, with a valid ``X-API-Key``, to the WSGI
application in this process. Every response must:

* not be a server error (5xx);
* have a status code the schema documents for that operation;
* have the documented content type;
* have a body that validates against the documented schema for that status.

Database access: each generated test (one per operation) requests ``api_data``, which
uses pytest-django's function-scoped ``db`` fixture. The WSGI app runs in this thread on
the same connection as the test, so it sees the fixture's rows inside the test's
transaction, and everything (including what the requests write, e.g. a key's
``last_used_at``) is rolled back after each operation. For that, Django must not close
the connection between requests (see ``_shared_connection``). Hypothesis' examples of one
operation share that one fixture instance, which is what we want here (the data is read
only) and why the function-scoped-fixture health check is suppressed. A module-scoped
``django_db_blocker.unblock()`` would save the per-operation setup (a few ms) but leave
committed rows behind for the rest of the suite; ``transactional_db`` would truncate
every table after each operation, which is slower and buys nothing when the app shares
the test's connection.

Random card ids mostly miss (404, documented), so ``test_known_cards_conform`` also sends
every operation once with a real card id, a real date and a real body, to validate the
200 bodies against the schema. Two more tests pin down what the fuzzer found or cannot
reach: the health endpoint's 429, and an encoded newline in an /api/ path (which the
fuzzer produces only now and then).

Bounded: ``MAX_EXAMPLES`` per operation and no deadline; the module takes ~10-15 s.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.keys import create_key
from pipelines.publishing import publish
from pokewatch_site.wsgi import application
from prices.models import Card, PricePoint
from tests.support.pipelines import prediction_frame

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
START = date(2026, 1, 1)
DAYS = 30
# Per operation, for the fuzzing phase (the examples and coverage phases add their own,
# bounded, cases). ~10 s for the whole module on the development machine.
MAX_EXAMPLES = 50

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def _shared_connection() -> Iterator[None]:
    """Keep the test's connection open across requests, as Django's test ``Client`` does.

    Django closes "unusable or obsolete" connections when a request starts and ends; inside
    the test's transaction (autocommit off) that means closing it, which would end the
    test's transaction on PostgreSQL. The test client disconnects that handler while it
    runs a request; schemathesis calls the WSGI app directly, so we do it here.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_data(db: None, settings: Any, _shared_connection: None, make_version) -> dict[str, Any]:
    """Cards with prices and a published champion's predictions; a key with a huge rate."""
    # Counters of the public (per-IP) limit are shared with the rest of the suite: lift
    # it so that this test only sees the responses its own requests cause.
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "public": "1000000/m"}
    # Unique ids: nothing cached for other tests' cards can answer for these.
    run = uuid.uuid4().hex[:8]
    card_ids = [f"st-{run}-{n}" for n in range(1, 6)]
    for n, card_id in enumerate(card_ids, start=1):
        card = Card.objects.create(
            card_id=card_id, name=f"Schema test card {n}", set_code="st", number=str(n)
        )
        PricePoint.objects.bulk_create(
            PricePoint(
                card=card,
                date=START + timedelta(days=i),
                market_price=Decimal(10 + i),
                source="test",
            )
            for i in range(DAYS)
        )
    Card.objects.create(card_id=f"st-{run}-inactive", name="Retired card", active=False)
    publish(make_version(), prediction_frame(card_ids, DAYS, start=START))
    _, raw_key = create_key("schemathesis", rate="1000000/m")
    return {
        "card_ids": card_ids,
        "headers": {"X-API-Key": raw_key},
        "last_day": START + timedelta(days=DAYS - 1),
    }


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, api_data: dict[str, Any]) -> None:
    case.call_and_validate(headers=api_data["headers"], checks=CHECKS)


# (path, method, path parameters, query, body); "@card0"/"@card1" stand for the fixture's
# card ids, "@last" for the last predicted day, "@unknown" for an id that does not exist.
KNOWN_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], Any]] = [
    ("/api/v1/health/", "GET", {}, {}, None),
    ("/api/v1/cards/", "GET", {}, {}, None),
    ("/api/v1/cards/", "GET", {}, {"set": "st", "signal": "HOLD", "page_size": 2}, None),
    ("/api/v1/cards/{card_id}/", "GET", {"card_id": "@card0"}, {}, None),
    ("/api/v1/cards/{card_id}/prices/", "GET", {"card_id": "@card0"}, {}, None),
    ("/api/v1/cards/{card_id}/prices/", "GET", {"card_id": "@card0"}, {"start": "@last"}, None),
    ("/api/v1/cards/{card_id}/fair-price/", "GET", {"card_id": "@card0"}, {}, None),
    ("/api/v1/cards/{card_id}/fair-price/", "GET", {"card_id": "@card0"}, {"date": "@last"}, None),
    ("/api/v1/fair-price/", "POST", {}, {}, {"card_id": "@card0"}),
    ("/api/v1/fair-price/", "POST", {}, {}, {"card_id": "@card0", "date": "@last"}),
    ("/api/v1/fair-price/batch/", "POST", {}, {}, {"card_ids": ["@card0", "@card1", "@unknown"]}),
    ("/api/v1/signals/", "GET", {}, {}, None),
    ("/api/v1/signals/", "GET", {}, {"date": "@last", "signal": "HOLD"}, None),
]


def _fill(value: Any, data: dict[str, Any]) -> Any:
    """Replace the placeholders of ``KNOWN_CASES`` with the fixture's data."""
    if isinstance(value, dict):
        return {k: _fill(v, data) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, data) for v in value]
    if isinstance(value, str) and value.startswith("@card"):
        return data["card_ids"][int(value.removeprefix("@card"))]
    if value == "@last":
        return data["last_day"].isoformat()
    if value == "@unknown":
        return "st-no-such-card"
    return value


@pytest.mark.parametrize(
    ("path", "method", "path_parameters", "query", "body"),
    KNOWN_CASES,
    ids=[f"{m} {p} {q or b or ''}".strip() for p, m, _, q, b in KNOWN_CASES],
)
def test_known_cards_conform(
    api_data: dict[str, Any],
    path: str,
    method: str,
    path_parameters: dict[str, Any],
    query: dict[str, Any],
    body: Any,
) -> None:
    kwargs: dict[str, Any] = {
        "path_parameters": _fill(path_parameters, api_data),
        "query": _fill(query, api_data),
    }
    if body is not None:
        kwargs["body"] = _fill(body, api_data)
        kwargs["media_type"] = "application/json"
    case = schema[path][method].Case(**kwargs)
    response = case.call_and_validate(headers=api_data["headers"], checks=CHECKS)
    assert response.status_code == 200, response.text


def test_health_documents_its_rate_limit(api_data: dict[str, Any], settings: Any) -> None:
    """Health is rate-limited per client IP (the "public" group): its 429 must be documented."""
    settings.POKEWATCH_RATES = {**settings.POKEWATCH_RATES, "public": "2/m"}
    operation = schema["/api/v1/health/"]["GET"]
    run_octet = uuid.uuid4().int % 250 + 1
    statuses = []
    for _ in range(3):
        # A client address of its own: counters are shared with the rest of the suite.
        case = operation.Case()
        response = case.call(environ_overrides={"REMOTE_ADDR": f"192.0.2.{run_octet}"})
        statuses.append(response.status_code)
    assert statuses[-1] == 429, statuses
    case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cards/a%0Ab/",
        "/api/v1/cards/a%0Ab/fair-price/",
        "/api/v1/cards/%5E%C2%86%0Ax/fair-price/?date=2026-01-01",
        "/api/v1/no-such%0Athing/",
    ],
)
def test_paths_with_a_newline_get_json_errors(api_data: dict[str, Any], path: str) -> None:
    """Found by the fuzzer: an encoded newline in an /api/ path (sent as is, which
    schemathesis only does for some generated values) must still get the JSON 404."""
    response = Client().get(path, headers=api_data["headers"])
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json", response.content[:200]
    assert "detail" in response.json()
