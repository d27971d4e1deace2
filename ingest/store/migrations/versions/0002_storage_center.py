"""Storage centre (issue 4): time-partitioned readings (or a TimescaleDB hypertable), rollups
(1 min, 1 h, 1 day) with their dirty-range log, batches keep the gateway's send time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

from ingest.store import pg_layout
from ingest.store.rollups import DAY_OFFSET_MS, LEVELS
from ingest.store.schema import EpochMs

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("point_id", sa.Integer, primary_key=True),
        sa.Column("bucket", EpochMs, primary_key=True),
        sa.Column("n_all", sa.Integer, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("sum", sa.Float(53), nullable=True),
        sa.Column("min", sa.Float(53), nullable=True),
        sa.Column("max", sa.Float(53), nullable=True),
        sa.Column("first_ts", EpochMs, nullable=True),
        sa.Column("first", sa.Float(53), nullable=True),
        sa.Column("last_ts", EpochMs, nullable=True),
        sa.Column("last", sa.Float(53), nullable=True),
    )


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("gateway_batches") as batch:
        batch.add_column(sa.Column("sent_ms", sa.BigInteger, nullable=True))
    op.create_index("ix_gateway_batches_sent", "gateway_batches", ["sent_ms"])
    op.create_table(
        "rollup_dirty",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("enterprise_id", sa.Integer, nullable=False),
        sa.Column("from_ms", sa.BigInteger, nullable=False),
        sa.Column("to_ms", sa.BigInteger, nullable=False),
    )
    if bind.dialect.name != "postgresql":
        for level in LEVELS.values():
            _rollup_table(level.table)
        _mark_existing_dirty("r.ts")
        return

    if pg_layout.use_timescale(bind):
        pg_layout.create_hypertable(bind)
        origin = "2000-01-01 00:00:00+08"  # days in UTC+8, as rollups.DAY_OFFSET_MS
        assert DAY_OFFSET_MS == 8 * 3_600_000
        for width, level in (("1 minute", LEVELS["1m"]), ("1 hour", LEVELS["1h"]), ("1 day", LEVELS["1d"])):
            pg_layout.create_continuous_aggregate(bind, level.table, width, origin)
        # made WITH NO DATA: without this the readings of a 0.1 database never reach the aggregates
        _mark_existing_dirty("(extract(epoch FROM r.ts) * 1000)::bigint")
        return

    # plain PostgreSQL: move readings into a table partitioned by month
    months = {(int(y), int(m)) for y, m in bind.execute(sa.text(
        "SELECT DISTINCT extract(year FROM ts AT TIME ZONE 'UTC'), extract(month FROM ts AT TIME ZONE 'UTC') "
        "FROM readings"))}
    now_ms = time.time_ns() // 1_000_000
    months.update(pg_layout.months_between(now_ms, now_ms + 32 * 86_400_000))  # this month and the next
    op.rename_table("readings", "readings_unpartitioned")
    bind.execute(sa.text("ALTER INDEX readings_pkey RENAME TO readings_unpartitioned_pkey"))
    pg_layout.create_partitioned_readings(bind, months)
    bind.execute(sa.text("INSERT INTO readings SELECT point_id, ts, value, quality FROM readings_unpartitioned"))
    op.drop_table("readings_unpartitioned")
    for level in LEVELS.values():
        _rollup_table(level.table)
    _mark_existing_dirty("(extract(epoch FROM r.ts) * 1000)::bigint")


def _mark_existing_dirty(ts_ms: str) -> None:
    """Readings stored before rollups existed get theirs on the first refresh."""
    op.get_bind().execute(sa.text(
        f"INSERT INTO rollup_dirty (enterprise_id, from_ms, to_ms) "
        f"SELECT dv.enterprise_id, min({ts_ms}) / 60000 * 60000, max({ts_ms}) / 60000 * 60000 + 60000 "
        f"FROM readings r JOIN points p ON p.id = r.point_id JOIN devices dv ON dv.id = p.device_id "
        f"GROUP BY dv.enterprise_id"))


def downgrade() -> None:
    bind = op.get_bind()
    for level in LEVELS.values():
        if bind.dialect.name == "postgresql" and pg_layout.layout(bind) == "timescaledb":
            bind.execute(sa.text(f"DROP MATERIALIZED VIEW {level.table}"))
        else:
            op.drop_table(level.table)
    op.drop_table("rollup_dirty")
    op.drop_index("ix_gateway_batches_sent", "gateway_batches")
    with op.batch_alter_table("gateway_batches") as batch:
        batch.drop_column("sent_ms")
    # readings stay partitioned / a hypertable: the rows are the same, only the layout differs
