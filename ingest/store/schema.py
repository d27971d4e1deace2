"""One SQLAlchemy Core schema for every SQL back end.

Time is an integer of epoch milliseconds (UTC) in Python everywhere. On PostgreSQL the readings
column is a real ``timestamptz`` (what Grafana's time macros and TimescaleDB expect); on SQLite it
is stored as that integer. :class:`EpochMs` converts at the boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.types import TypeDecorator, TypeEngine

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_MIN_MS, _MAX_MS = -62_135_596_800_000, 253_402_300_799_999  # what a datetime can hold


class EpochMs(TypeDecorator[int]):
    """int epoch ms in Python; timestamptz on PostgreSQL, BIGINT elsewhere."""

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        # open-ended ranges ("everything up to 2**62") clamp to what a datetime can say
        return EPOCH + min(max(value, _MIN_MS), _MAX_MS) * _MS

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return (value - EPOCH) // _MS
        return int(value)


metadata = MetaData()

parks = Table(
    "parks", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("name_zh", Text, nullable=False, default=""),
    Column("name_en", Text, nullable=False, default=""),
    Column("park_class", String(32), nullable=False, default="none"),
    Column("region", Text, nullable=False, default=""),
)

enterprises = Table(
    "enterprises", metadata,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("name", Text, nullable=False, default=""),
    UniqueConstraint("park_id", "key"),
)

gateways = Table(
    "gateways", metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("online", Boolean, nullable=False, default=False),
    Column("status_ms", BigInteger, nullable=True),
    UniqueConstraint("enterprise_id", "key"),
)

devices = Table(
    "devices", metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("name", Text, nullable=False, default=""),
    # what the registry says of it (a gateway's catalogue only names it): the simulator / product
    # kind, the 六系统 system it serves, whether the platform expects it to report, and whether it is
    # production equipment (the digitalisation rate counts those)
    Column("kind", String(32), nullable=False, default="", server_default=""),
    Column("system", String(16), nullable=True),
    Column("expected", Boolean, nullable=False, default=False, server_default=false()),
    Column("production", Boolean, nullable=False, default=False, server_default=false()),
    Column("sum_of", Text, nullable=True),  # meter balance: JSON list of "enterprise/device" it sums (0013)
    UniqueConstraint("enterprise_id", "key"),
)

points = Table(
    "points", metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("key", String(300), nullable=False, unique=True),  # park.enterprise.device.point
    Column("name", String(64), nullable=False),
    Column("metric", String(64), nullable=True),  # NULL until the gateway's catalogue names it
    Column("unit", String(32), nullable=False, default=""),
    Column("kind", String(16), nullable=False, default=""),
    Column("label", Text, nullable=False, default=""),
    # the rollup refresh and the per-enterprise reads join points by device: without it each scans the
    # whole table, which grows with enterprises × points (measured in docs/capacity.md)
    Index("ix_points_device", "device_id"),
)

readings = Table(
    "readings", metadata,
    Column("point_id", Integer, primary_key=True),
    Column("ts", EpochMs, primary_key=True),
    Column("value", Float(53), nullable=True),
    Column("quality", SmallInteger, nullable=False),
)

gateway_health = Table(
    "gateway_health", metadata,
    Column("gateway_id", Integer, primary_key=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("body", Text, nullable=False),  # the agent's wire.Health as JSON, latest only
)

gateway_batches = Table(
    "gateway_batches", metadata,
    Column("gateway_id", Integer, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("received_ms", BigInteger, nullable=False),
    Column("samples", Integer, nullable=False),
    # the gateway's own send time: completeness is counted per day of sending, not of arrival,
    # so a day replayed from a gateway's buffer a week later fills that day's gaps
    Column("sent_ms", BigInteger, nullable=True),
    Index("ix_gateway_batches_sent", "sent_ms"),
)

dead_letters = Table(
    "dead_letters", metadata,
    Column("id", Integer, primary_key=True),
    Column("received_ms", BigInteger, nullable=False),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("reason", Text, nullable=False),
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True),
    Column("received_ms", BigInteger, nullable=False),
    Column("point_key", String(300), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("value", Float(53), nullable=True),
    Column("quality", SmallInteger, nullable=False),
    Column("reason", Text, nullable=False),
)


def _rollup(name: str) -> Table:
    """A rollup of readings over fixed buckets. Only good-quality values (quality < 64) enter
    n/sum/min/max/first/last; ``n_all`` counts every sample, so a bucket of bad data is visible."""
    return Table(
        name, metadata,
        Column("point_id", Integer, primary_key=True),
        Column("bucket", EpochMs, primary_key=True),  # bucket start
        Column("n_all", Integer, nullable=False),
        Column("n", Integer, nullable=False),
        Column("sum", Float(53), nullable=True),
        Column("min", Float(53), nullable=True),
        Column("max", Float(53), nullable=True),
        Column("first_ts", EpochMs, nullable=True),
        Column("first", Float(53), nullable=True),
        Column("last_ts", EpochMs, nullable=True),
        Column("last", Float(53), nullable=True),
    )


readings_1m = _rollup("readings_1m")
readings_1h = _rollup("readings_1h")
readings_1d = _rollup("readings_1d")

# Ranges of readings written since the rollups were last refreshed, per enterprise (the write path
# adds a row per enterprise and contiguous run of minutes; the refresh consumes them).
rollup_dirty = Table(
    "rollup_dirty", metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, nullable=False),
    Column("from_ms", BigInteger, nullable=False),  # first minute touched (inclusive)
    Column("to_ms", BigInteger, nullable=False),  # end of the last minute touched (exclusive)
)

# The indicators hour by hour, written by analytics/board_feed.py for what reads SQL alone (Grafana's
# PostgreSQL source): one row per park (enterprise '') and per enterprise and hour (China hours are
# whole UTC hours). Energy in kWh / tce; NULL where an input was missing. The storage pool carries
# from hour to hour within a China day, so Σ re_used / Σ consumption over a day is that day's share.
indicator_hourly = Table(
    "indicator_hourly", metadata,
    Column("park_id", Integer, ForeignKey("parks.id"), primary_key=True),
    Column("enterprise", String(64), primary_key=True),  # '' = the whole park
    Column("bucket", EpochMs, primary_key=True),  # hour start
    Column("imp", Float(53), nullable=True),
    Column("exp", Float(53), nullable=True),
    Column("re_gen", Float(53), nullable=True),
    Column("charge", Float(53), nullable=True),
    Column("discharge", Float(53), nullable=True),
    Column("curtailed", Float(53), nullable=True),
    Column("re_used", Float(53), nullable=True),  # the share's numerator (NES-1..4)
    Column("consumption", Float(53), nullable=True),  # the share's denominator
    Column("pool_kwh", Float(53), nullable=True),  # storage pool at the hour's end, and its RE part
    Column("pool_re_kwh", Float(53), nullable=True),
    Column("target", Float(53), nullable=True),  # the park's share target of that year (0..1)
    Column("tce", Float(53), nullable=True),  # comprehensive energy (GB/T 2589, equivalent method)
    Column("covered_s", Integer, nullable=False, default=0),  # seconds of the hour with data
    Column("updated_ms", BigInteger, nullable=False),
)
