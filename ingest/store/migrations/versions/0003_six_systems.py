"""Six systems (issue 5): the records no meter gives (emergency register, incidents, hazardous
waste, gate events, economic figures, notices, service requests), the enterprise directory, the
audit log; devices say their kind, system and whether they are expected to report.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ingest.store import record_tables as tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Created from the live definitions (ingest/store/record_tables.py). Before a later migration alters
# one of these tables, copy its definition here as it is now, so this step keeps making the same.
_TABLES = [tables.audit_log, tables.enterprise_profiles, tables.hazard_sources, tables.incidents,
           tables.hazwaste_records, tables.hazwaste_manifests, tables.gate_events, tables.economic_figures,
           tables.production_quantities, tables.notices, tables.service_requests]


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("kind", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("system", sa.String(16), nullable=True))
        batch.add_column(sa.Column("expected", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("production", sa.Boolean, nullable=False, server_default=sa.false()))
    bind = op.get_bind()
    for t in _TABLES:
        t.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for t in reversed(_TABLES):
        t.drop(bind)
    with op.batch_alter_table("devices") as batch:
        for col in ("production", "expected", "system", "kind"):
            batch.drop_column(col)
