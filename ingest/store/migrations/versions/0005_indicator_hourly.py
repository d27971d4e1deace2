"""Boards (issue 8): the indicators hour by hour, for Grafana's PostgreSQL source.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

from ingest.store.schema import indicator_hourly

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # created from the live definition; copy it here before a later migration alters the table
    indicator_hourly.create(op.get_bind())


def downgrade() -> None:
    indicator_hourly.drop(op.get_bind())
