"""An index on points(device_id): the rollup refresh joined points by device with a full scan per
enterprise (docs/capacity.md measured it growing with enterprises × points).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_points_device", "points", ["device_id"])


def downgrade() -> None:
    op.drop_index("ix_points_device", table_name="points")
