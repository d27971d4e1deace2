"""TimescaleDB: the index on ``readings.ts`` is a BRIN instead of the B-tree create_hypertable makes by
default (issue 22). The continuous-aggregate refresh needs an index on ts (a minute of every point,
which the point-first primary key cannot find); a BRIN finds the same pages at 0.02 bytes a reading
instead of ~7, and costs the writes next to nothing (ingest/store/pg_layout.py, docs/capacity.md).
Plain PostgreSQL and SQLite: nothing to do (their readings have no index on ts).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from ingest.store import pg_layout

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _timescale() -> bool:
    bind = op.get_bind()
    return bind.dialect.name == "postgresql" and pg_layout.layout(bind) == "timescaledb"


def upgrade() -> None:
    if _timescale():
        pg_layout.create_ts_index(op.get_bind())  # first: the refresh never goes without an index on ts
        op.execute(f"DROP INDEX IF EXISTS {pg_layout.DEFAULT_TS_INDEX}")


def downgrade() -> None:
    if _timescale():
        op.execute(f"CREATE INDEX IF NOT EXISTS {pg_layout.DEFAULT_TS_INDEX} ON readings (ts DESC)")
        op.execute(f"DROP INDEX IF EXISTS {pg_layout.TS_INDEX}")
