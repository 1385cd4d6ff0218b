"""The site's own management command: ``bootstrap`` (pokewatch_site/management/commands)."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from prices.models import Card, PricePoint


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_bootstrap_loads_everything_once_and_keeps_one_demo_key(db, settings, tmp_path) -> None:
    from accounts.keys import resolve_key

    settings.VAR_DIR = tmp_path
    first = run("bootstrap", "--no-train")
    second = run("bootstrap", "--no-train", "--port", "8765")
    assert "9161 created" in first
    assert "demo history not imported again" in second
    raw = (tmp_path / "demo_api_key.txt").read_text().strip()
    assert resolve_key(raw) is not None
    assert raw in first and raw in second  # the same key, shown again
    assert f'curl -H "X-API-Key: {raw}" http://127.0.0.1:8765/api/v1/signals/' in second
    assert Card.objects.count() == 50
    assert PricePoint.objects.count() == 9161
