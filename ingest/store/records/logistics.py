"""交通物流监测: gate events from the park's gate systems, and what they add up to (vehicles in the
park, dwell times, hazardous-goods vehicles present).

The format (docs/gate-events.md) is the same over HTTP (``POST /api/v1/parks/{park}/gate-events``)
and MQTT (``parkmon/v1/<park>/<owner>/<gate system>/gate``)::

    {"v": 1, "events": [{"id": "g1-000123", "gate": "east", "ts": 1795363200000, "plate": "蒙A12345",
                         "class": "tanker", "hazardous": true, "direction": "in", "enterprise": "e02"}]}

Each event is checked on its own: the good ones are stored, each bad one is reported with its
index and reason (and kept as a dead letter by the caller), so one typo loses nothing else.
``id`` makes resending harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from statistics import median
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ingest.store import schema as s
from ingest.store.base import Store
from ingest.store.records.base import RecordError, connection, park_id, transaction
from ingest.store.records.spec import Http, Op, QueryMs, RecordType
from parkmon.common.clock import now_ms
from parkmon.common.metrics import System

# what the park's gate systems report, one row per vehicle passing a gate
gate_events = Table(
    "gate_events", s.metadata,
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

VehicleClass = Literal["car", "bus", "truck", "tanker", "van", "other"]
VEHICLE_CLASSES: dict[str, tuple[str, str]] = {
    "car": ("小型客车", "car"), "bus": ("客车", "bus"), "truck": ("货车", "truck"),
    "tanker": ("罐车", "tanker"), "van": ("厢式货车", "van"), "other": ("其他", "other")}
# province character, issuing-office letter, then 5 characters (6 for new energy), or 4 and a
# suffix (挂 trailer, 学, 警, ...); 无牌 when the camera read none
_PLATE = r"^([\u4e00-\u9fff][A-Z]([A-Z0-9]{5,6}|[A-Z0-9]{4}[\u4e00-\u9fff])|无牌)$"
_TS_MIN, _TS_MAX = 946_684_800_000, 32_503_680_000_000
MAX_EVENTS = 1000


class GateEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # no NUL: PostgreSQL text cannot hold it, and over MQTT ingest retried such a batch for ever
    id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]
    gate: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    ts: Annotated[int, Field(ge=_TS_MIN, lt=_TS_MAX, description="epoch milliseconds, UTC")]
    plate: Annotated[str, Field(pattern=_PLATE, description="e.g. 蒙A12345, or 无牌 when unread")]
    vehicle_class: Annotated[VehicleClass, Field(alias="class")]
    hazardous: bool = False
    direction: Literal["in", "out"]
    enterprise: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None


@dataclass
class Decoded:
    events: list[GateEvent] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index in the batch, reason)


def decode(payload: bytes) -> Decoded:
    """Split a batch into valid events and reasons; raise RecordError when the batch itself is broken."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"gate events: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("events"), list):
        raise RecordError('gate events: expected {"v": 1, "events": [...]} (see docs/gate-events.md)')
    raw = doc["events"]
    if not 1 <= len(raw) <= MAX_EVENTS:
        raise RecordError(f"gate events: a batch holds 1 to {MAX_EVENTS} events, got {len(raw)}")
    out = Decoded()
    for i, ev in enumerate(raw):
        try:
            out.events.append(GateEvent.model_validate(ev))
        except ValidationError as exc:
            why = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors())
            out.rejected.append((i, why))
    return out


def store_events(store: Store, park: str, events: list[GateEvent], received_ms: int) -> tuple[int, int]:
    """Insert; an event id seen before is a duplicate, not an error. Returns (accepted, duplicates). A
    database error is a StoreError: ingest holds the message and retries it."""
    if not events:
        return 0, 0
    with transaction(store, failure="gate events not stored") as conn:
        pid = park_id(conn, park)
        ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(gate_events)
        rows = [{"park_id": pid, "event_id": e.id, "gate": e.gate, "ts_ms": e.ts, "plate": e.plate,
                 "vehicle_class": e.vehicle_class, "hazardous": e.hazardous, "direction": e.direction,
                 "enterprise": e.enterprise, "received_ms": received_ms} for e in events]
        got = conn.execute(ins.on_conflict_do_nothing(index_elements=["park_id", "event_id"])
                           .returning(gate_events.c.id), rows).all()
    return len(got), len(rows) - len(got)


def push(store: Store, park: str, payload: Annotated[bytes, Http("raw")]) -> dict[str, Any]:
    """A batch over HTTP: the valid events are stored, every refusal is kept as a dead letter."""
    received = now_ms()
    where = f"http:/api/v1/parks/{park}/gate-events"
    try:
        dec = decode(payload)
    except RecordError as exc:
        store.dead_letter(where, payload, str(exc), received)
        raise
    accepted, duplicates = store_events(store, park, dec.events, received)
    for i, why in dec.rejected:
        store.dead_letter(where, payload, f"event {i}: {why}", received)
    rejected = [{"index": i, "reason": why} for i, why in dec.rejected]
    if dec.rejected and not dec.events:
        raise RecordError(f"gate events: all {len(rejected)} refused", detail={"rejected": rejected})
    return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}


def state(store: Store, park: str, now: int, window_days: float = 7.0) -> dict[str, Any]:
    """Vehicles in the park now (last event within the window was an entry), their dwell, and the
    completed visits of the last 24 h. A vehicle whose exit was never seen drops out after the window."""
    ge = gate_events
    with connection(store) as conn:
        rows = conn.execute(select(ge.c.plate, ge.c.ts_ms, ge.c.direction, ge.c.vehicle_class, ge.c.hazardous,
                                   ge.c.gate, ge.c.enterprise)
                            .where(ge.c.park_id == park_id(conn, park),
                                   ge.c.ts_ms >= now - int(window_days * 86_400_000), ge.c.ts_ms <= now)
                            .order_by(ge.c.ts_ms, ge.c.id)).all()
    # at one instant an entry precedes an exit (ids follow commit order, which workers may swap)
    rows = sorted(rows, key=lambda r: (r.ts_ms, r.direction == "out"))
    inside: dict[str, Any] = {}
    visits: list[float] = []  # completed visits of the last 24 h, minutes
    entries_24h = exits_24h = 0
    day_ago = now - 86_400_000
    for r in rows:
        if r.plate == "无牌":
            continue  # an unread plate cannot be paired
        if r.direction == "in":
            inside[r.plate] = r
            entries_24h += r.ts_ms >= day_ago
        else:
            exits_24h += r.ts_ms >= day_ago
            came = inside.pop(r.plate, None)
            if came is not None and r.ts_ms >= day_ago:
                visits.append((r.ts_ms - came.ts_ms) / 60_000)
    vehicles = [{"plate": r.plate, "class": r.vehicle_class, "hazardous": bool(r.hazardous), "gate": r.gate,
                 "enterprise": r.enterprise, "since_ms": r.ts_ms, "dwell_min": round((now - r.ts_ms) / 60_000, 1)}
                for r in sorted(inside.values(), key=lambda r: r.ts_ms)]
    return {
        "at_ms": now,
        "vehicles_in_park": len(vehicles),
        "hazardous_in_park": sum(v["hazardous"] for v in vehicles),
        "entries_24h": entries_24h, "exits_24h": exits_24h,
        "completed_visits_24h": len(visits),
        "dwell_median_min_24h": round(median(visits), 1) if visits else None,
        "dwell_max_min_24h": round(max(visits), 1) if visits else None,
        "vehicles": vehicles,
    }


def state_at(store: Store, park: str, at_ms: QueryMs = None) -> dict[str, Any]:
    """:func:`state` as the API asks for it: at a time, default now."""
    return state(store, park, at_ms or now_ms())


def gates_seen(conn: Connection, park_id_: int, since_ms: int) -> set[str]:
    """The gates (device keys of kind gate) that reported an event since ``since_ms``: the registry's
    coverage counts them as reporting."""
    return set(conn.execute(select(gate_events.c.gate).where(
        gate_events.c.park_id == park_id_, gate_events.c.ts_ms >= since_ms)).scalars())


def panel(store: Store, park: str, now: int) -> dict[str, Any]:
    """The logistics system's panel: vehicles in the park and the day's traffic."""
    return {"gates": state(store, park, now)}


_BATCH_SCHEMA = {"type": "object", "required": ["v", "events"], "properties": {
    "v": {"const": 1}, "events": {"type": "array", "items": GateEvent.model_json_schema(by_alias=True)}}}

RECORD_TYPE = RecordType(
    "logistics", System.LOGISTICS, "logistics 交通物流", tables=(gate_events,), panel=panel, ops=(
        Op("POST", "/parks/{park}/gate-events", "Push gate events (道闸过车记录上报)", push,
           body_schema=_BATCH_SCHEMA,
           description="Valid events are stored (a resent id counts as a duplicate); each bad one is answered "
                       "with its index and reason and kept as a dead letter, so nothing else in the batch is "
                       "lost."),
        Op("GET", "/parks/{park}/logistics", "Vehicles in the park, dwell, hazardous goods (在园车辆)", state_at),
    ))
