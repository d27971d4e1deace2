"""Industrial solid waste by enterprise, month and waste (工业固体废物: generated, utilised, from stock,
disposed, stored): the inputs of the zero-carbon park's 工业固体废物综合利用率 (ingest/store/records/solid_waste.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a frozen copy of the table as this revision made it (the module's Table may change later)
    op.create_table(
        "solid_waste_months",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("waste", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        *(sa.Column(c, sa.Float(53), nullable=False)
          for c in ("generated_t", "utilised_t", "utilised_from_stock_t", "disposed_t", "stored_t")),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("enterprise_id", "month", "waste"),
    )


def downgrade() -> None:
    op.drop_table("solid_waste_months")
