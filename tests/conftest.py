"""Fixtures that start real services: mosquitto, PostgreSQL, and a store over each back end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingest.mqtt.broker import Mosquitto, start_mosquitto
from ingest.store import Store, open_store, pg_layout
from tests.pg_server import Postgres, start_postgres, timescaledb_missing


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = start_postgres()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh broker per test: tests stop and restart it."""
    broker = start_mosquitto(tmp_path / "mosquitto")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def pg_url(postgres: Postgres) -> str:
    return os.environ.get("PARKMON_TEST_PG_DSN") or postgres.create_database()


@pytest.fixture(params=["sqlite", "postgresql", "timescaledb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every storage test runs over each back end: SQLite, PostgreSQL with monthly partitions, and
    TimescaleDB (hypertable, continuous aggregates) where the server has it (./dev.sh test builds it)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'parkmon.db'}"
    if request.param == "timescaledb":
        missing = None if os.environ.get("PARKMON_TEST_PG_DSN") else timescaledb_missing()
        if missing:
            pytest.skip(missing)
    url: str = request.getfixturevalue("pg_url")
    if request.param == "timescaledb":
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            libs = conn.execute("SHOW shared_preload_libraries").fetchone()
        if "timescaledb" not in (libs[0] if libs else ""):
            pytest.skip("the PostgreSQL server of PARKMON_TEST_PG_DSN does not preload TimescaleDB")
    # the layout parkmon gives a new database (ingest/store/pg_layout.py), on the same server
    monkeypatch.setenv(pg_layout.ENV, "timescaledb" if request.param == "timescaledb" else "partitioned")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = open_store(store_url)
    st.create_schema()
    try:
        yield st
    finally:
        st.close()
