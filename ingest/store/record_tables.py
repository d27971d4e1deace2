"""Tables of the six systems' records that no meter gives: entered through the API, imported from
files or pushed by park systems (gate events). Same metadata as the readings (ingest/store/schema.py), so
one Alembic history covers both; times are epoch milliseconds (UTC) like everywhere in parkmon.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ingest.store.schema import metadata

# every write through the API or an import, with what it changed (before / after as JSON)
audit_log = Table(
    "audit_log", metadata,
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
    "enterprise_profiles", metadata,
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
    "hazard_sources", metadata,
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
    "incidents", metadata,
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
    "hazwaste_records", metadata,
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
    "hazwaste_manifests", metadata,
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
    "gate_events", metadata,
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
    "economic_figures", metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM
    Column("output_value", Float(53), nullable=True),  # 工业总产值, 万元
    Column("value_added", Float(53), nullable=True),  # 工业增加值, 万元
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("enterprise_id", "month"),
)

production_quantities = Table(
    "production_quantities", metadata,
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
    "notices", metadata,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("audience", Text, nullable=False, default="*"),  # * or a JSON list of enterprise keys
    Column("published_ms", BigInteger, nullable=False),
)

service_requests = Table(
    "service_requests", metadata,
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

# ---- alerts (issue 7): alert state, its history, the delivery outbox, subscriptions, park rules ----
alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True),
    Column("rule_id", String(64), nullable=False),
    Column("subject", Text, nullable=False),  # park/enterprise/device/point, or park/enterprise/gateway
    Column("park", String(64), nullable=False),
    Column("enterprise", String(64), nullable=True),
    Column("device", String(64), nullable=True),
    Column("metric", String(64), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("system", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # firing | resolved
    Column("since_ms", BigInteger, nullable=False),
    Column("fired_ms", BigInteger, nullable=False),  # the data's time of firing
    Column("created_ms", BigInteger, nullable=False),  # wall clock when the platform raised it (escalation)
    Column("resolved_ms", BigInteger, nullable=True),
    Column("value", Float, nullable=True),
    Column("peak", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("unit", String(16), nullable=False, default=""),
    Column("detail", Text, nullable=False, default="{}"),  # JSON: names, op, source, label
    Column("acked_by", String(128), nullable=True),
    Column("acked_ms", BigInteger, nullable=True),
    Column("escalations", Integer, nullable=False, default=0),
    Index("ix_alerts_park_state", "park", "state"),
    Index("ix_alerts_rule_subject", "rule_id", "subject", "state"),
)

alert_events = Table(
    "alert_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("event", String(16), nullable=False),  # firing | resolved | escalated | acknowledged | manual_resolve
    Column("actor", String(128), nullable=False, default="parkmon"),
    Column("value", Float, nullable=True),
    Column("title_zh", Text, nullable=False),
    Column("text_zh", Text, nullable=False),
    Column("text_en", Text, nullable=False),
    Index("ix_alert_events_alert", "alert_id"),
)

# one row per event and subscription, committed with the event: delivery is at least once from here
alert_outbox = Table(
    "alert_outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, ForeignKey("alert_events.id"), nullable=False),
    Column("subscription_id", Integer, nullable=False),
    Column("idem_key", String(64), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("payload", Text, nullable=False),  # JSON message as the channel sends it
    Column("created_ms", BigInteger, nullable=False),
    Column("next_try_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("delivered_ms", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_alert_outbox_due", "delivered_ms", "next_try_ms"),
)

alert_subscriptions = Table(
    "alert_subscriptions", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),  # regulator | operator | enterprise
    Column("region", String(64), nullable=True),
    Column("park", String(64), nullable=True),
    Column("enterprise", String(64), nullable=True),
    Column("kinds", Text, nullable=False, default=""),  # comma list of rule kinds; empty = all
    Column("systems", Text, nullable=False, default=""),  # comma list of 六系统 keys; empty = all
    Column("min_severity", String(16), nullable=False, default="info"),
    Column("channel", String(16), nullable=False),
    Column("config", Text, nullable=False),  # JSON: url, secret, topic, to, ...
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_ms", BigInteger, nullable=False),
)

# rules a park set through the API (the defaults live in analytics/alerts/rules.yaml)
alert_rules = Table(
    "alert_rules", metadata,
    Column("id", String(64), primary_key=True),
    Column("park", String(64), primary_key=True),
    Column("body", Text, nullable=False),  # the rule as JSON
    Column("updated_ms", BigInteger, nullable=False),
)

# API access tokens (issue 10): only the SHA-256 of a token is kept; the token is shown once when made
api_tokens = Table(
    "api_tokens", metadata,
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
