"""The Sparkplug bridge's births, kept (``sparkplug_births``): a restarted bridge reads the data the broker held
for it with the births that defined its aliases, instead of dropping it until each node rebirths.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a frozen copy of the table as this revision made it (record_tables.sparkplug_births may change later)
    op.create_table(
        "sparkplug_births",
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column("node", sa.String(255), primary_key=True),
        sa.Column("device", sa.String(255), primary_key=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sparkplug_births")
