"""The gthread worker that leaves new connections to idle siblings once it is busy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gunicorn.workers.gthread import ThreadWorker

from pokewatch_site import gunicorn_worker
from pokewatch_site.gunicorn_worker import BalancedThreadWorker
from tests.support import ROOT


def _worker(connections: int, threads: int) -> BalancedThreadWorker:
    worker = BalancedThreadWorker.__new__(BalancedThreadWorker)  # no arbiter, no sockets
    worker.nr_conns = connections
    worker.cfg = SimpleNamespace(threads=threads)
    return worker


@pytest.fixture
def accepting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """gunicorn's own accept counts the connection; sleeps are recorded, not slept."""
    pauses: list[float] = []

    def accept(self, server, listener):  # type: ignore[no-untyped-def]
        self.nr_conns += 1

    monkeypatch.setattr(ThreadWorker, "accept", accept)
    monkeypatch.setattr(gunicorn_worker.time, "sleep", pauses.append)
    return pauses


def test_a_worker_with_spare_threads_accepts_without_pausing(accepting) -> None:
    worker = _worker(connections=0, threads=2)
    for _ in range(2):
        worker.accept(None, None)
    assert worker.nr_conns == 2
    assert accepting == []


def test_a_busy_worker_pauses_after_each_further_accept(accepting) -> None:
    worker = _worker(connections=2, threads=2)
    for _ in range(3):
        worker.accept(None, None)
    assert worker.nr_conns == 5
    assert accepting == [gunicorn_worker.ACCEPT_PAUSE] * 3


def test_the_production_config_uses_it() -> None:
    import runpy

    conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    assert conf["worker_class"] == "pokewatch_site.gunicorn_worker.BalancedThreadWorker"
    from gunicorn.util import load_class

    assert load_class(conf["worker_class"]) is BalancedThreadWorker
