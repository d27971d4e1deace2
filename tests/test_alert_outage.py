"""While the database is away the alert loops keep trying, and say so twice: once when the outage starts
(with its cause and traceback) and once when it ends (how long, how many attempts failed) — not an ERROR
with a traceback every second (issue 21: 60 of them in a one-minute outage)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from analytics.alerts.dispatch import Dispatcher
from analytics.alerts.engine import AlertEngine
from ingest.store import Store, open_store
from tests.mqtt_util import wait_for
from tests.pg_server import Postgres, start_postgres


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    pg = start_postgres()
    try:
        yield pg
    finally:
        pg.destroy()


def _lines(caplog: pytest.LogCaptureFixture, what: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(what)]


def test_a_database_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
        own_postgres: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    store: Store = open_store(own_postgres.create_database())
    store.create_schema()
    dispatcher, engine = Dispatcher(store), AlertEngine(store, rules=[])
    stop = threading.Event()
    loops = [threading.Thread(target=dispatcher.run, args=(stop, 0.05), daemon=True),
             threading.Thread(target=engine.run, args=(stop, 0.05), daemon=True)]
    caplog.set_level(logging.INFO)
    try:
        for t in loops:
            t.start()
        own_postgres.stop()
        # each loop tries every 0.05 s: wait until both have failed many times over
        wait_for(lambda: dispatcher._outage.failures >= 10 and engine._timer.failures >= 10, timeout=60,
                 what="ten failed rounds of each loop")
        own_postgres.start()
        wait_for(lambda: not dispatcher._outage.down and not engine._timer.down, timeout=60,
                 what="both loops working again")
    finally:
        stop.set()
        for t in loops:
            t.join(10)
        store.close()
    for what in ("alert dispatch", "alert timer"):
        failing = _lines(caplog, f"{what} failing")
        assert len(failing) == 1 and failing[0].levelno == logging.ERROR and failing[0].exc_info is not None
        again = _lines(caplog, f"{what} works again")
        assert len(again) == 1 and again[0].levelno == logging.WARNING
        # "works again after N s; M attempts failed meanwhile": M counts every failed round (>= the 10 waited for)
        assert int(again[0].getMessage().split("; ")[1].split()[0]) >= 10
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "failing" not in r.getMessage()
                and "still failing" not in r.getMessage()]
