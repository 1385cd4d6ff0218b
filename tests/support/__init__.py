"""Plain helpers shared by the tests: the repository's paths, service checks, small factories.

Not tests and no fixtures (fixtures live in the ``conftest.py`` files). Test modules and
``conftest.py`` files import from here and from nowhere else under ``tests``: no test module
imports another one (tests/repository/test_layout.py checks it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# MLflow and ZenML state of the test session lives in a throwaway folder, never in var/.
ML_DIR = Path(tempfile.mkdtemp(prefix="pokewatch-tests-ml-"))


def require_service(reason: str) -> None:
    """Skip the test for want of ``reason``; with ``CI`` set, fail it instead."""
    if os.environ.get("CI"):
        pytest.fail(f"CI requires this service: {reason}")
    pytest.skip(reason)


def database_url() -> str:
    """The URL of the PostgreSQL test database (``test_<name>``) this process is using."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    user = quote(db["USER"], safe="")
    return f"postgres://{user}{password}@{db['HOST'] or 'localhost'}{port}/{db['NAME']}"
