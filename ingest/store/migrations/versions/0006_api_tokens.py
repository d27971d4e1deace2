"""Tenancy (issue 10): API access tokens, kept as their SHA-256.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The table as this step made it, frozen here: the live definition (ingest/store/record_tables.py) may
# change in later migrations, this step may not. Only the SHA-256 of a token is kept.
api_tokens = Table(
    "api_tokens", MetaData(),
    Column("id", Integer, primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("name", String(128), nullable=False),  # who holds it: a person, a system
    Column("role", String(16), nullable=False),  # admin | regulator | operator | enterprise | gateway
    Column("regions", Text, nullable=False, default=""),  # regulator: comma list of regions
    Column("park", String(64), nullable=True),  # operator / enterprise / gateway
    Column("enterprise", String(64), nullable=True),  # enterprise / gateway
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=True),
    Column("revoked_ms", BigInteger, nullable=True),
)


def upgrade() -> None:
    api_tokens.create(op.get_bind())


def downgrade() -> None:
    api_tokens.drop(op.get_bind())
