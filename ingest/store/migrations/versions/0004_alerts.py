"""Alerts (issue 7): alert state and history, the delivery outbox, subscriptions, park rules.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The tables as this step made them, frozen here: the live definitions (ingest/store/record_tables.py) may
# change in later migrations, this step may not.
_md = MetaData()

alerts = Table(
    "alerts", _md,
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
    "alert_events", _md,
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
    "alert_outbox", _md,
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
    "alert_subscriptions", _md,
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
    "alert_rules", _md,
    Column("id", String(64), primary_key=True),
    Column("park", String(64), primary_key=True),
    Column("body", Text, nullable=False),  # the rule as JSON
    Column("updated_ms", BigInteger, nullable=False),
)

_TABLES = [alerts, alert_events, alert_outbox, alert_subscriptions, alert_rules]


def upgrade() -> None:
    bind = op.get_bind()
    for t in _TABLES:
        t.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for t in reversed(_TABLES):
        t.drop(bind)
