"""manage.py: a database it cannot use is one line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT, database_url


@pytest.mark.postgres
def test_a_database_that_does_not_exist_is_one_line_and_exit_1(db) -> None:
    url = database_url().rsplit("/", 1)[0] + "/pokewatch_no_such_database"
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1
    assert len(lines) == 1, result.stderr
    assert 'database "pokewatch_no_such_database" does not exist' in lines[0]
    assert "createdb" in lines[0]


def test_mlflow_db_in_the_repository_root_is_ignored() -> None:
    """MLflow's own default store (``mlflow.db`` in the working directory) never shows up
    as a file to commit, if a command is run without MLFLOW_TRACKING_URI."""
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "mlflow.db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout.strip() == "mlflow.db"
