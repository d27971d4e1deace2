"""Bring a database to the current schema with Alembic (``store.create_schema()`` calls this).

A database made by parkmon 0.1 (``create_all``, no ``alembic_version``) is recognised by its
``readings`` table, stamped as revision 0001 and upgraded from there.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from ingest.store import pg_layout

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(conn: object) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    rev = ScriptDirectory.from_config(_config(None)).get_current_head()
    assert rev is not None
    return rev


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, target: str = "head") -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            pg_layout.check_server(conn)  # before a migration fails on it with PostgreSQL's terser words
            conn.execute(text("SELECT pg_advisory_xact_lock(7202611230)"))  # workers starting together: one by one
        cfg = _config(conn)
        if MigrationContext.configure(conn).get_current_revision() is None and inspect(conn).has_table("readings"):
            command.stamp(cfg, "0001")  # made by create_all before migrations existed
        command.upgrade(cfg, target)


def downgrade(engine: Engine, target: str) -> None:
    with engine.begin() as conn:
        command.downgrade(_config(conn), target)
