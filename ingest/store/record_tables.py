"""Tables beside the readings that are not one record type's: the audit log every write goes through,
the alerts' state, history, outbox, subscriptions and park rules, and the API's tokens. (Each six-systems
record type keeps its tables in its own module, ingest/store/records/.) Same metadata as the readings
(ingest/store/schema.py), so one Alembic history covers all; times are epoch milliseconds (UTC) like
everywhere in parkmon.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

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
    # who holds it (issue 20 item 6): the name of the token or OIDC user that made it; NULL (made before
    # migration 0009 with no audit trail of its maker): an administrator's to see and delete
    Column("owner", String(128), nullable=True),
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

# the Sparkplug bridge's births (ingest/sparkplug): the live NBIRTH of each edge node and its devices' DBIRTHs, as
# received, so a restarted bridge still reads the aliases of the data the broker kept for it (device "" = NBIRTH)
sparkplug_births = Table(
    "sparkplug_births", metadata,
    Column("group_id", String(255), primary_key=True),
    Column("node", String(255), primary_key=True),
    Column("device", String(255), primary_key=True),
    Column("payload", LargeBinary, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
)
