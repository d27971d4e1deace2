"""Fixtures that start real services: mosquitto, PostgreSQL, and a store over each back end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingest.mqtt.broker import Mosquitto, start_mosquitto
from ingest.store import Store, open_store
from tests.pg_server import Postgres, start_postgres


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
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every storage test runs over each back end; TimescaleDB where the server has the extension
    (Debian 12 ships none, so here it is skipped; set PARKMON_TEST_PG_DSN to a server with it)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'parkmon.db'}"
    url: str = request.getfixturevalue("pg_url")
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        has_ts = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if request.param == "timescaledb" and not has_ts:
        pytest.skip("the TimescaleDB extension is not installed on this PostgreSQL server")
    if request.param == "postgresql" and has_ts:
        pytest.skip("this server has TimescaleDB: parkmon uses it, the plain-PostgreSQL layout runs elsewhere")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = open_store(store_url)
    st.create_schema()
    try:
        yield st
    finally:
        st.close()
