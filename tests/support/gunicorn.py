"""A real gunicorn on a free port, with the production configuration (config/gunicorn.conf.py,
``DEBUG=0``), for what Django's test client cannot send: chunked bodies, oversized headers."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import ROOT, database_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn_env(tmp: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a production-like gunicorn (``DEBUG=0``, a fresh
    secret, its var dir under ``tmp``), without WEB_CONCURRENCY, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in {"WEB_CONCURRENCY", "DEBUG"}}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        GUNICORN_ACCESS_LOG="",
        POKEWATCH_VAR_DIR=str(tmp / "var"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def gunicorn_command(port: int, *args: str) -> list[str]:
    """gunicorn with the project's configuration on 127.0.0.1:``port``."""
    return [
        sys.executable, "-m", "gunicorn", "pokewatch_site.wsgi",
        "--config", str(ROOT / "config" / "gunicorn.conf.py"),
        "--bind", f"127.0.0.1:{port}", *args,
    ]  # fmt: skip


class Gunicorn:
    """``with Gunicorn(tmp) as server:``: one worker serving ``server.port`` until the end."""

    def __init__(self, tmp: Path, **env: str) -> None:
        self.port = free_port()
        self.log_path = tmp / "gunicorn.log"
        self.env = gunicorn_env(
            tmp, **{"WEB_CONCURRENCY": "1", "DATABASE_URL": database_url(), **env}
        )
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        command = gunicorn_command(self.port)
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while not self._answers():
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.25)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/x/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
