"""The laptop default: no DATABASE_URL, no REDIS_URL. Runs the real commands in a subprocess
against a fresh SQLite file, so CI exercises this path even when the suite runs on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def manage(var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    unset = {"DATABASE_URL", "REDIS_URL", "DEBUG", "ZENML_CONFIG_PATH", "MLFLOW_TRACKING_URI"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["POKEWATCH_VAR_DIR"] = str(var_dir)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_embedded_default_migrates_bootstraps_and_reimports(tmp_path: Path) -> None:
    migrate = manage(tmp_path, "migrate", "--noinput", "-v0")
    assert migrate.returncode == 0, migrate.stderr
    first = manage(tmp_path, "bootstrap")
    assert first.returncode == 0, first.stderr
    assert "holding back its last 120 days to replay" in first.stdout
    assert "promoted" in first.stdout  # the first training run made a champion
    # The held-back days came in week by week after training: scored, recorded, graded.
    assert "replaying" in first.stdout and "new predictions" in first.stdout
    assert "track record:" in first.stdout
    assert (tmp_path / "mlflow.db").exists() and (tmp_path / "zenml").is_dir()
    assert (tmp_path / "pokewatch.sqlite3").exists()

    again = manage(
        tmp_path,
        "import_prices",
        "config/demo/tcgplayer_market_prices_dev.csv",
        "--source",
        "tcgplayer-demo",
    )
    assert again.returncode == 0, again.stderr
    assert "0 created, 0 updated, 9161 unchanged" in again.stdout

    # What a new user opens first: the first card the list shows has a fair price.
    first_card = manage(tmp_path, "shell", "-c", FIRST_CARD_SCRIPT)
    assert first_card.returncode == 0, first_card.stderr
    listed, fair = first_card.stdout.strip().splitlines()[-2:]
    card_id, list_status = listed.split()
    assert list_status == "200" and card_id.startswith("tcgplayer-"), first_card.stdout
    fair_status, fair_price = fair.split()
    assert fair_status == "200" and float(fair_price) > 0, first_card.stdout


# Reads the list and the first card's fair price with the demo key that bootstrap wrote,
# through the real URL conf and middleware.
FIRST_CARD_SCRIPT = """
from django.conf import settings
from django.test import Client
key = (settings.VAR_DIR / "demo_api_key.txt").read_text().strip()
client = Client(HTTP_X_API_KEY=key, HTTP_HOST="127.0.0.1")
listed = client.get("/api/v1/cards/?page_size=1")
card = listed.json()["results"][0]["card_id"]
print(card, listed.status_code)
fair = client.get(f"/api/v1/cards/{card}/fair-price/")
print(fair.status_code, fair.json().get("fair_price"))
"""
