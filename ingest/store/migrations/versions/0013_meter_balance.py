"""Meter balance (总分表平衡, issue 23): a device may say its flow is the sum of other devices' flows
(``devices.sum_of``: a JSON list of ``enterprise/device`` keys), which the meter-balance indicator and
the ``balance`` alert rules compare it with.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot drop the column again without rebuilding the table
    with op.batch_alter_table("devices") as b:
        b.add_column(sa.Column("sum_of", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as b:
        b.drop_column("sum_of")
