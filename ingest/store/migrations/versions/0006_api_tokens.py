"""Tenancy (issue 10): API access tokens, kept as their SHA-256.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

from ingest.store.record_tables import api_tokens

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # created from the live definition; copy it here before a later migration alters the table
    api_tokens.create(op.get_bind())


def downgrade() -> None:
    api_tokens.drop(op.get_bind())
