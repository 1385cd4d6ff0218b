"""The site's own management command, ``bootstrap`` (pokewatch_site/management/commands),
and what every command shares (pokewatch_site/commands.py): bad input ends in one line."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import (
    call_command,
    execute_from_command_line,
    get_commands,
    load_command_class,
)

from pokewatch_site.commands import PokeWatchCommand
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
    # Where the key really is (POKEWATCH_VAR_DIR outside the repository), not var/.
    assert f"demo API key (also in {tmp_path.resolve() / 'demo_api_key.txt'}): {raw}" in first
    assert f'curl -H "X-API-Key: {raw}" http://127.0.0.1:8765/api/v1/signals/' in second
    assert Card.objects.count() == 50
    assert PricePoint.objects.count() == 9161


# --- bad input: one clear line and a non-zero exit, never a traceback (issue 13) --------

#: Every PokeWatch command with a bad value, and what its one line says.
BAD_INPUT = [
    ("import_cards", ["/nonexistent/cards.yaml"], "/nonexistent/cards.yaml"),
    ("import_prices", ["/nonexistent/prices.csv"], "cannot read /nonexistent/prices.csv"),
    ("import_prices", ["x.csv", "--bogus"], "unrecognized arguments: --bogus"),
    ("collect_prices", ["--date", "2026-13-01"], "argument --date: must be a YYYY-MM-DD date"),
    ("collect_prices", ["--source", "ebay"], "argument --source: invalid choice: 'ebay'"),
    ("collect_prices", ["--days", "many"], "argument --days: invalid int value: 'many'"),
    ("collect_prices", ["--source", "simulated", "--days", "0"], "days must be between 1"),
    ("collect_prices", ["--min-price", "1_000"], "argument --min-price: must be a plain decimal"),
    ("collect_prices", ["--group", "-3"], "argument --group: must be 0 or more"),
    ("collect_prices", ["--cards", "-1"], "argument --cards: must be 0 or more"),
    ("cache_stats", ["--clear=yes"], "argument --clear: ignored explicit argument 'yes'"),
    ("score", ["--since", "2026-13-01"], "argument --since: must be a YYYY-MM-DD date"),
    ("backtest", ["--horizon", "0"], "--horizon must be between 1 and 90 days, got 0"),
    ("backtest", ["--horizon", "x"], "argument --horizon: invalid int value: 'x'"),
    ("drift", ["--since", "2026-01-01"], "unrecognized arguments: --since 2026-01-01"),
    ("promote", ["999"], "no version '999' of pokewatch-fair-value is recorded here"),
    ("promote", [], "the following arguments are required: version"),
    ("run_pipeline", ["--trigger", "cron"], "argument --trigger: invalid choice: 'cron'"),
    ("schedule", ["now"], "unrecognized arguments: now"),
    ("apikey", ["create", "x", "--expires", "2026-13-01"], "argument --expires: must be a"),
    ("apikey", ["create", "x", "--rate", "fast"], 'Invalid rate "fast"'),
    ("apikey", ["revoke", "nope"], "nope"),
    ("apikey", ["rotate"], "argument ACTION: invalid choice: 'rotate'"),
    ("bootstrap", ["--replay-days", "-1"], "argument --replay-days: must be 0 or more"),
    ("bootstrap", ["--port", "70000"], "argument --port: must be a port between 1 and 65535"),
]


@pytest.mark.parametrize(
    ("command", "args", "message"), BAD_INPUT, ids=[f"{c} {' '.join(a)}" for c, a, _ in BAD_INPUT]
)
def test_bad_input_gives_one_clear_line_and_a_non_zero_exit(
    transactional_db,
    capsys: pytest.CaptureFixture[str],
    command: str,
    args: list[str],
    message: str,
) -> None:
    # As from a shell: Django's run_from_argv prints a CommandError, argparse its own errors.
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", command, *args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exited.value.code not in (0, None)
    assert len(lines) == 1, err
    assert message in lines[0]
    assert "Traceback" not in err


def test_every_command_of_the_project_gives_one_line_errors() -> None:
    """A new command that forgets the shared base would print argparse's usage again."""
    names = [
        name
        for name, app in get_commands().items()
        if app in ("prices", "pipelines", "accounts", "pokewatch_site")
    ]
    assert {name for name, *_ in BAD_INPUT} == set(names)
    for name in names:
        command = load_command_class(get_commands()[name], name)
        assert isinstance(command, PokeWatchCommand), name
