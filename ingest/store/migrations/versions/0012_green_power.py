"""The green-power register (issue 23): green-power contracts (绿电交易) and green certificates (绿证) bought,
sold or cancelled by a park or its enterprises, which the new-energy share reads for every period.

Revision ID: 0012
Revises: 0009 (re-chained after 0011 once the migrations being written beside it land)
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

# The tables as this step makes them, frozen here: the live definitions (ingest/store/records/green_register.py)
# may change in later migrations, this step may not.
_md = MetaData()
Table("parks", _md, Column("id", Integer, primary_key=True))  # made by 0001, named for the foreign keys
Table("enterprises", _md, Column("id", Integer, primary_key=True))

green_contracts = Table(
    "green_contracts", _md,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=True),
    Column("key", String(64), nullable=False),
    Column("seller", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("contracted_kwh", Float(53), nullable=False),
    Column("settled_kwh", Float(53), nullable=True),
    Column("changed_from_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("voided_ms", BigInteger, nullable=True),
    UniqueConstraint("park_id", "key"),
)

green_certificates = Table(
    "green_certificates", _md,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=True),
    Column("first_id", String(64), nullable=False),
    Column("last_id", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("project", Text, nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("action", String(16), nullable=False),
    Column("contract_id", Integer, ForeignKey("green_contracts.id"), nullable=True),
    Column("acted_on", String(10), nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
    Column("voided_ms", BigInteger, nullable=True),
    Index("ix_green_certificates_park", "park_id"),
)


def upgrade() -> None:
    green_contracts.create(op.get_bind())
    green_certificates.create(op.get_bind())


def downgrade() -> None:
    green_certificates.drop(op.get_bind())
    green_contracts.drop(op.get_bind())
