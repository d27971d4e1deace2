"""The schema of parkmon 0.1 (issues 2-3): registry, readings, batches, health, dead letters, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ingest.store.schema import EpochMs

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("name_zh", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text, nullable=False),
        sa.Column("park_class", sa.String(32), nullable=False),
        sa.Column("region", sa.Text, nullable=False),
    )
    op.create_table(
        "enterprises",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("park_id", sa.Integer, sa.ForeignKey("parks.id"), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.UniqueConstraint("park_id", "key"),
    )
    op.create_table(
        "gateways",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("enterprise_id", sa.Integer, sa.ForeignKey("enterprises.id"), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("status_ms", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("enterprise_id", "key"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("enterprise_id", sa.Integer, sa.ForeignKey("enterprises.id"), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.UniqueConstraint("enterprise_id", "key"),
    )
    op.create_table(
        "points",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("key", sa.String(300), nullable=False, unique=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(64), nullable=True),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
    )
    op.create_table(
        "readings",
        sa.Column("point_id", sa.Integer, primary_key=True),
        sa.Column("ts", EpochMs, primary_key=True),
        sa.Column("value", sa.Float(53), nullable=True),
        sa.Column("quality", sa.SmallInteger, nullable=False),
    )
    op.create_table(
        "gateway_health",
        sa.Column("gateway_id", sa.Integer, primary_key=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "gateway_batches",
        sa.Column("gateway_id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("point_key", sa.String(300), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float(53), nullable=True),
        sa.Column("quality", sa.SmallInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("quarantine", "dead_letters", "gateway_batches", "gateway_health", "readings", "points",
                  "devices", "gateways", "enterprises", "parks"):
        op.drop_table(table)
