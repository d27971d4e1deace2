"""安全应急管理: the emergency register of each enterprise (hazard sources with their contacts and
response plan) and the park's incident log. The live side (pressures, gas detectors, valves, fire
alarms) is meter data: safety-system points read by the edge agent like any other."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table, Text, UniqueConstraint, select

from ingest.store import schema as s
from ingest.store.base import Store
from ingest.store.records.base import (
    NotFound,
    RecordError,
    audit,
    connection,
    enterprise_id,
    enterprise_keys,
    park_id,
    transaction,
)
from ingest.store.records.spec import BodyMs, Key, Op, RecordType, RowId
from parkmon.common.clock import now_ms
from parkmon.common.metrics import System

# the emergency register: hazard sources with their contacts and response plan
hazard_sources = Table(
    "hazard_sources", s.metadata,
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

incidents_table = Table(
    "incidents", s.metadata,
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

_KEY = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
_TS = Field(ge=946_684_800_000, lt=32_503_680_000_000, description="epoch milliseconds, UTC")
HazardKind = Literal["pressure_vessel", "pipeline", "storage_tank", "warehouse", "process_unit", "other"]
SEVERITIES: dict[str, tuple[str, str]] = {"general": ("一般", "general"), "large": ("较大", "large"),
                                          "major": ("重大", "major"), "grave": ("特别重大", "grave")}


class HazardSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1)]
    kind: HazardKind
    level: Literal["1", "2", "3", "4", "none"] = "none"  # 重大危险源分级 (GB 18218), or none
    location: str = ""
    devices: list[Annotated[str, _KEY]] = []  # the devices (sensors) that watch it
    contact_name: Annotated[str, Field(min_length=1)]
    contact_phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{5,20}$")]
    plan_ref: Annotated[str, Field(min_length=1, description="应急预案编号 / reference of the response plan")]


class Incident(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enterprise: Annotated[str | None, _KEY] = None
    occurred: Annotated[int, _TS]
    kind: Literal["leak", "fire", "explosion", "overpressure", "poisoning", "spill", "injury", "other"]
    severity: Literal["general", "large", "major", "grave"] = "general"
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""


def put_hazard_source(store: Store, park: str, enterprise: str, key: Key, src: HazardSource,
                      actor: str) -> dict[str, Any]:
    with transaction(store) as conn:
        eid = enterprise_id(conn, park, enterprise)
        known = set(conn.execute(select(s.devices.c.key).where(s.devices.c.enterprise_id == eid)).scalars())
        missing = [d for d in src.devices if d not in known]
        if missing:
            raise RecordError(f"hazard source {key}: devices {', '.join(missing)} are not registered for "
                              f"{enterprise} (registered: {', '.join(sorted(known)) or 'none'})")
        hs = hazard_sources
        old = conn.execute(select(hs).where(hs.c.enterprise_id == eid, hs.c.key == key)).first()
        values = {**src.model_dump(), "devices": json.dumps(src.devices), "updated_ms": now_ms()}
        if old is None:
            conn.execute(hs.insert().values(enterprise_id=eid, key=key, **values))
        else:
            conn.execute(hs.update().where(hs.c.id == old.id).values(**values))
        audit(conn, actor=actor, action="create" if old is None else "update", entity="hazard_sources",
              key=f"{enterprise}/{key}", park=park, before=None if old is None else _source(old),
              after=src.model_dump())
    return {"enterprise": enterprise, "key": key, **src.model_dump()}


def _source(r: Any) -> dict[str, Any]:
    return {"name": r.name, "kind": r.kind, "level": r.level, "location": r.location,
            "devices": json.loads(r.devices), "contact_name": r.contact_name, "contact_phone": r.contact_phone,
            "plan_ref": r.plan_ref}


def register(store: Store, park: str) -> list[dict[str, Any]]:
    hs = hazard_sources
    with connection(store) as conn:
        ents = enterprise_keys(conn, park_id(conn, park))
        rows = conn.execute(select(hs).where(hs.c.enterprise_id.in_(list(ents)))
                            .order_by(hs.c.enterprise_id, hs.c.key)).all()
    return [{"enterprise": ents[r.enterprise_id], "key": r.key, **_source(r), "updated_ms": r.updated_ms}
            for r in rows]


def open_incident(store: Store, park: str, inc: Incident, actor: str) -> dict[str, Any]:
    with transaction(store) as conn:
        pid = park_id(conn, park)
        eid = enterprise_id(conn, park, inc.enterprise) if inc.enterprise else None
        iid = conn.execute(incidents_table.insert().values(
            park_id=pid, enterprise_id=eid, occurred_ms=inc.occurred, kind=inc.kind, severity=inc.severity,
            title=inc.title, description=inc.description, status="open", created_ms=now_ms())
            .returning(incidents_table.c.id)).scalar_one()
        audit(conn, actor=actor, action="create", entity="incidents", key=str(iid), park=park,
              after=inc.model_dump())
    return {"id": iid, "status": "open", **inc.model_dump()}


def close_incident(store: Store, park: str, incident_id: RowId, closed: BodyMs, actor: str) -> dict[str, Any]:
    inc = incidents_table
    with transaction(store) as conn:
        pid = park_id(conn, park)
        row = conn.execute(select(inc).where(inc.c.id == incident_id, inc.c.park_id == pid)).first()
        if row is None:
            raise NotFound(f"incident {incident_id} is not in park {park}")
        if row.status == "closed":
            raise RecordError(f"incident {incident_id} was already closed at {row.closed_ms}")
        if closed < row.occurred_ms:
            raise RecordError(f"incident {incident_id}: closed {closed} is before it occurred ({row.occurred_ms})")
        conn.execute(inc.update().where(inc.c.id == incident_id).values(status="closed", closed_ms=closed))
        audit(conn, actor=actor, action="update", entity="incidents", key=str(incident_id), park=park,
              before={"status": "open"}, after={"status": "closed", "closed": closed})
    return {"id": incident_id, "status": "closed", "closed": closed}


def incidents(store: Store, park: str, status: Literal["open", "closed"] | None = None) -> list[dict[str, Any]]:
    inc = incidents_table
    with connection(store) as conn:
        pid = park_id(conn, park)
        ents = enterprise_keys(conn, pid)
        q = select(inc).where(inc.c.park_id == pid)
        if status:
            q = q.where(inc.c.status == status)
        rows = conn.execute(q.order_by(inc.c.occurred_ms.desc())).all()
    return [{"id": r.id, "enterprise": ents.get(r.enterprise_id) if r.enterprise_id else None,
             "occurred": r.occurred_ms, "kind": r.kind, "severity": r.severity,
             "severity_zh": SEVERITIES[r.severity][0], "title": r.title, "description": r.description,
             "status": r.status, "closed": r.closed_ms}
            for r in rows]


def panel(store: Store, park: str, now: int) -> dict[str, Any]:
    """The safety system's panel: open incidents and how many hazard sources are registered."""
    return {"open_incidents": incidents(store, park, status="open"), "hazard_sources": len(register(store, park))}


RECORD_TYPE = RecordType(
    "safety", System.SAFETY, "safety 安全应急", tables=(hazard_sources, incidents_table), panel=panel, ops=(
        Op("PUT", "/parks/{park}/enterprises/{enterprise}/hazard-sources/{key}",
           "Register a hazard source with contacts and response plan (危险源登记)", put_hazard_source,
           writers=("operator", "enterprise")),
        Op("GET", "/parks/{park}/hazard-sources", "The park's emergency register (应急登记)", register),
        Op("POST", "/parks/{park}/incidents", "Log an incident (事件上报)", open_incident),
        Op("PATCH", "/parks/{park}/incidents/{incident_id}", "Close an incident (事件关闭)", close_incident),
        Op("GET", "/parks/{park}/incidents", "Incident log (事件记录)", incidents),
    ))
