"""Alerts (issue 7): alert state and history, the delivery outbox, subscriptions, park rules.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

from ingest.store import record_tables as tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Created from the live definitions (ingest/store/record_tables.py). Before a later migration alters
# one of these tables, copy its definition here as it is now, so this step keeps making the same.
_TABLES = [tables.alerts, tables.alert_events, tables.alert_outbox, tables.alert_subscriptions, tables.alert_rules]


def upgrade() -> None:
    bind = op.get_bind()
    for t in _TABLES:
        t.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for t in reversed(_TABLES):
        t.drop(bind)
