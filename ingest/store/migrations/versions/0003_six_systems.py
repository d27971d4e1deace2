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
from sqlalchemy import (
    BigInteger,
    Boolean,
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

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The tables as this step made them, frozen here: the live definitions (ingest/store/record_tables.py, the
# record types' modules in ingest/store/records/) may change in later migrations, this step may not.
_md = MetaData()
# the registry's tables as far as the foreign keys below need them (made by 0001, not here)
Table("parks", _md, Column("id", Integer, primary_key=True))
Table("enterprises", _md, Column("id", Integer, primary_key=True))

# every write through the API or an import, with what it changed (before / after as JSON)
audit_log = Table(
    "audit_log", _md,
    Column("id", Integer, primary_key=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),  # create | update | delete | import | ...
    Column("entity", String(64), nullable=False),  # table-ish name: economic_figures, incidents, ...
    Column("entity_key", Text, nullable=False),
    Column("park", String(64), nullable=False, default=""),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Index("ix_audit_log_park_at", "park", "at_ms"),
)

# 综合服务: the park's enterprise directory (one row per enterprise, optional)
enterprise_profiles = Table(
    "enterprise_profiles", _md,
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), primary_key=True),
    Column("industry", Text, nullable=False, default=""),
    Column("credit_code", String(18), nullable=False, default=""),  # 统一社会信用代码
    Column("contact_name", Text, nullable=False, default=""),
    Column("contact_phone", String(32), nullable=False, default=""),
    Column("address", Text, nullable=False, default=""),
    # 危险废物: the storage the enterprise's permit / facility allows, in tonnes (None: not set)
    Column("hazwaste_storage_limit_t", Float(53), nullable=True),
)

# 安全应急管理: the emergency register (hazard sources with contacts and response plan) and incidents
hazard_sources = Table(
    "hazard_sources", _md,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("level", String(16), nullable=False, default="none"),  # 重大危险源 level 1-4, or none
    Column("location", Text, nullable=False, default=""),
    Column("devices", Text, nullable=False, default="[]"),  # JSON list of device keys that watch it
    Column("contact_name", Text, nullable=False),
    Column("contact_phone", String(32), nullable=False),
    Column("plan_ref", Text, nullable=False),  # the emergency response plan's reference (预案编号)
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("enterprise_id", "key"),
)

incidents = Table(
    "incidents", _md,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=True),
    Column("occurred_ms", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False, default="open"),
    Column("closed_ms", BigInteger, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
)

# 环境保护监测: hazardous waste (危险废物) generated / utilised on site, and transfer manifests (转移联单)
hazwaste_records = Table(
    "hazwaste_records", _md,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("waste_code", String(16), nullable=False),  # 国家危险废物名录 code, e.g. 900-041-49
    Column("category", String(8), nullable=False),  # HW01..HW50
    Column("name", Text, nullable=False, default=""),
    Column("action", String(16), nullable=False),  # generated | utilised (on-site utilisation / disposal)
    Column("quantity_t", Float(53), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

hazwaste_manifests = Table(
    "hazwaste_manifests", _md,
    Column("id", Integer, primary_key=True),
    Column("manifest_no", String(64), nullable=False, unique=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("waste_code", String(16), nullable=False),
    Column("category", String(8), nullable=False),
    Column("quantity_t", Float(53), nullable=False),
    Column("transporter", Text, nullable=False),
    Column("receiver", Text, nullable=False),
    Column("shipped_ms", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
)

# 交通物流监测: what the park's gate systems report, one row per vehicle passing a gate
gate_events = Table(
    "gate_events", _md,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("event_id", String(128), nullable=False),  # the gate system's own id: resending is harmless
    Column("gate", String(64), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("plate", String(16), nullable=False),
    Column("vehicle_class", String(16), nullable=False),
    Column("hazardous", Boolean, nullable=False),
    Column("direction", String(3), nullable=False),  # in | out
    Column("enterprise", String(64), nullable=True),  # destination, when the gate system knows it
    Column("received_ms", BigInteger, nullable=False),
    UniqueConstraint("park_id", "event_id"),
    Index("ix_gate_events_park_ts", "park_id", "ts_ms"),
)

# 经济运行监测: monthly figures per enterprise (万元 = 10k yuan) and production quantities
economic_figures = Table(
    "economic_figures", _md,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM
    Column("output_value", Float(53), nullable=True),  # 工业总产值, 万元
    Column("value_added", Float(53), nullable=True),  # 工业增加值, 万元
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("enterprise_id", "month"),
)

production_quantities = Table(
    "production_quantities", _md,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("month", String(7), nullable=False),
    Column("product", String(128), nullable=False),
    Column("quantity", Float(53), nullable=False),
    Column("unit", String(16), nullable=False),
    UniqueConstraint("enterprise_id", "month", "product"),
)

# 综合服务: notices from the park to its enterprises, and the enterprises' service requests
notices = Table(
    "notices", _md,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("audience", Text, nullable=False, default="*"),  # * or a JSON list of enterprise keys
    Column("published_ms", BigInteger, nullable=False),
)

service_requests = Table(
    "service_requests", _md,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("category", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False, default="open"),
    Column("reply", Text, nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

_TABLES = [audit_log, enterprise_profiles, hazard_sources, incidents, hazwaste_records, hazwaste_manifests,
           gate_events, economic_figures, production_quantities, notices, service_requests]


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
