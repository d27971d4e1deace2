"""环境保护监测 / 危险废物: what each enterprise generates, uses on site and ships under transfer
manifests (转移联单), and whether its store keeps to its limits.

Stock is counted per waste code first in, first out: a manifest or on-site utilisation takes the
oldest tonnes first, so the age of the oldest tonne still stored is the storage time the law limits
(《固体废物污染环境防治法》(2020) 第八十一条: 贮存危险废物不得超过一年 — the default
``max_storage_days``, configurable where an authority has approved longer).
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import BigInteger, Column, Connection, Float, ForeignKey, Integer, String, Table, Text, select

from ingest.store import schema as s
from ingest.store.base import Store
from ingest.store.records.base import (
    Conflict,
    RecordError,
    audit,
    connection,
    enterprise_id,
    enterprise_keys,
    park_id,
    transaction,
)
from ingest.store.records.services import enterprise_profiles  # the directory holds each permit's tonnage
from ingest.store.records.spec import BodyMs, Op, QueryMs, RecordType
from parkmon.common.clock import now_ms
from parkmon.common.metrics import System

# hazardous waste (危险废物) generated / utilised on site
hazwaste_records = Table(
    "hazwaste_records", s.metadata,
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

# transfer manifests (转移联单): what leaves for a licensed receiver
hazwaste_manifests = Table(
    "hazwaste_manifests", s.metadata,
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

_CODE = re.compile(r"^\d{3}-\d{3}-(\d{2})$")  # 国家危险废物名录 (2021): 行业来源-序号-类别, e.g. 900-041-49
_TS = Field(ge=946_684_800_000, lt=32_503_680_000_000, description="epoch milliseconds, UTC")
_EPS_T = 1e-9


@dataclass(frozen=True)
class Limits:
    max_storage_days: float = 365.0  # 固废法 第八十一条
    # per-enterprise tonnage comes from the directory (enterprise_profiles.hazwaste_storage_limit_t)


def category(code: str) -> str:
    m = _CODE.match(code)
    if not m or not 1 <= int(m.group(1)) <= 50:
        raise ValueError(f"waste code {code!r} is not a 国家危险废物名录 code like 900-041-49 (category HW01-HW50)")
    return f"HW{m.group(1)}"


class WasteRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enterprise: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    ts: Annotated[int, _TS]
    waste_code: str
    name: str = ""
    action: Literal["generated", "utilised"]
    quantity_t: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _code(self) -> WasteRecord:
        category(self.waste_code)
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    manifest_no: Annotated[str, Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
    enterprise: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    waste_code: str
    quantity_t: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]
    transporter: Annotated[str, Field(min_length=1)]
    receiver: Annotated[str, Field(min_length=1, description="licensed receiving unit (持证接收单位)")]
    shipped: Annotated[int, _TS]
    received: Annotated[int | None, _TS] = None

    @model_validator(mode="after")
    def _check(self) -> Manifest:
        category(self.waste_code)
        if self.received is not None and self.received < self.shipped:
            raise ValueError("received is before shipped")
        return self


def _stock(conn: Connection, eid: int, code: str, until_ms: int) -> float:
    lots = _lots(conn, [eid], until_ms).get((eid, code), deque())
    return sum(q for _ts, q in lots)


def add_record(store: Store, park: str, rec: WasteRecord, actor: str) -> dict[str, Any]:
    with transaction(store) as conn:
        eid = enterprise_id(conn, park, rec.enterprise)
        if rec.action == "utilised":
            have = _stock(conn, eid, rec.waste_code, rec.ts)
            if rec.quantity_t > have + _EPS_T:
                raise RecordError(f"{rec.enterprise}: utilising {rec.quantity_t} t of {rec.waste_code} but only "
                                  f"{have:.3f} t is stored at that time")
        row = {"enterprise_id": eid, "ts_ms": rec.ts, "waste_code": rec.waste_code,
               "category": category(rec.waste_code), "name": rec.name, "action": rec.action,
               "quantity_t": rec.quantity_t, "created_ms": now_ms()}
        rid = conn.execute(hazwaste_records.insert().values(**row).returning(hazwaste_records.c.id)).scalar_one()
        after = rec.model_dump()
        audit(conn, actor=actor, action="create", entity="hazwaste_records", key=str(rid), park=park, after=after)
    return {"id": rid, **after}


def add_manifest(store: Store, park: str, m: Manifest, actor: str) -> dict[str, Any]:
    hm = hazwaste_manifests
    with transaction(store) as conn:
        eid = enterprise_id(conn, park, m.enterprise)
        if conn.execute(select(hm.c.id).where(hm.c.manifest_no == m.manifest_no)).first() is not None:
            raise Conflict(f"manifest {m.manifest_no} is already recorded; PATCH it to set its receipt")
        have = _stock(conn, eid, m.waste_code, m.shipped)
        if m.quantity_t > have + _EPS_T:
            raise RecordError(f"manifest {m.manifest_no}: ships {m.quantity_t} t of {m.waste_code} but "
                              f"{m.enterprise} has {have:.3f} t of it stored at that time (record its generation "
                              "first)")
        conn.execute(hm.insert().values(
            manifest_no=m.manifest_no, enterprise_id=eid, waste_code=m.waste_code, category=category(m.waste_code),
            quantity_t=m.quantity_t, transporter=m.transporter, receiver=m.receiver, shipped_ms=m.shipped,
            received_ms=m.received, created_ms=now_ms()))
        audit(conn, actor=actor, action="create", entity="hazwaste_manifests", key=m.manifest_no, park=park,
              after=m.model_dump())
    return m.model_dump()


def receive_manifest(store: Store, park: str, manifest_no: str, received: BodyMs, actor: str) -> dict[str, Any]:
    hm, en = hazwaste_manifests, s.enterprises
    with transaction(store) as conn:
        pid = park_id(conn, park)
        row = conn.execute(select(hm).select_from(hm.join(en, en.c.id == hm.c.enterprise_id))
                           .where(hm.c.manifest_no == manifest_no, en.c.park_id == pid)).first()
        if row is None:
            raise RecordError(f"manifest {manifest_no} is not recorded in park {park}")
        if received < row.shipped_ms:
            raise RecordError(f"manifest {manifest_no}: received {received} is before it was shipped "
                              f"({row.shipped_ms})")
        conn.execute(hm.update().where(hm.c.id == row.id).values(received_ms=received))
        audit(conn, actor=actor, action="update", entity="hazwaste_manifests", key=manifest_no, park=park,
              before={"received": row.received_ms}, after={"received": received})
    return {"manifest_no": manifest_no, "received": received}


def _lots(conn: Connection, eids: list[int], until_ms: int) -> dict[tuple[int, str], deque[tuple[int, float]]]:
    """FIFO lots left per (enterprise, waste code) at ``until_ms``."""
    hr, hm = hazwaste_records, hazwaste_manifests
    moves: list[tuple[int, int, str, float, bool]] = []  # (ts, enterprise, code, tonnes, is_inflow)
    for r in conn.execute(select(hr.c.ts_ms, hr.c.enterprise_id, hr.c.waste_code, hr.c.quantity_t, hr.c.action)
                          .where(hr.c.enterprise_id.in_(eids), hr.c.ts_ms <= until_ms)):
        moves.append((r.ts_ms, r.enterprise_id, r.waste_code, r.quantity_t, r.action == "generated"))
    for m in conn.execute(select(hm.c.shipped_ms, hm.c.enterprise_id, hm.c.waste_code, hm.c.quantity_t)
                          .where(hm.c.enterprise_id.in_(eids), hm.c.shipped_ms <= until_ms)):
        moves.append((m.shipped_ms, m.enterprise_id, m.waste_code, m.quantity_t, False))
    lots: dict[tuple[int, str], deque[tuple[int, float]]] = defaultdict(deque)
    for ts, eid, code, q, inflow in sorted(moves, key=lambda m: (m[0], not m[4])):  # inflows first at a tie
        lot = lots[(eid, code)]
        if inflow:
            lot.append((ts, q))
            continue
        while q > _EPS_T and lot:
            t0, have = lot[0]
            take = min(have, q)
            q -= take
            if have - take > _EPS_T:
                lot[0] = (t0, have - take)
            else:
                lot.popleft()
    return lots


def storage(store: Store, park: str, now: int, limits: Limits = Limits()) -> list[dict[str, Any]]:
    """Per enterprise: tonnes stored per waste code, the oldest tonne's age, and which limits are broken."""
    ep = enterprise_profiles
    with connection(store) as conn:
        ents = enterprise_keys(conn, park_id(conn, park))
        cap = dict(conn.execute(select(ep.c.enterprise_id, ep.c.hazwaste_storage_limit_t)
                                .where(ep.c.enterprise_id.in_(list(ents)))).all())
        lots = _lots(conn, list(ents), now)
    out = []
    for eid, key in sorted(ents.items(), key=lambda kv: kv[1]):
        codes: list[dict[str, Any]] = []
        for (e, code), lot in sorted(lots.items()):
            qty = sum(q for _ts, q in lot)
            if e != eid or qty <= _EPS_T:
                continue
            age = (now - lot[0][0]) / 86_400_000
            codes.append({"waste_code": code, "category": category(code), "stored_t": round(qty, 6),
                          "oldest_ms": lot[0][0], "oldest_age_days": round(age, 2),
                          "over_time": age > limits.max_storage_days})
        total = sum(c["stored_t"] for c in codes)
        limit_t = cap.get(eid)
        problems = [f"{c['waste_code']} 贮存 {c['oldest_age_days']:.0f} 天, 超过 {limits.max_storage_days:.0f} 天 "
                    f"(stored {c['oldest_age_days']:.0f} days, over the {limits.max_storage_days:.0f}-day limit)"
                    for c in codes if c["over_time"]]
        if limit_t is not None and total > limit_t + _EPS_T:
            problems.append(f"贮存量 {total:.2f} t 超过许可 {limit_t:.2f} t (stored {total:.2f} t, over the "
                            f"{limit_t:.2f} t limit)")
        if codes or limit_t is not None:
            out.append({"enterprise": key, "stored_t": round(total, 6), "limit_t": limit_t, "codes": codes,
                        "max_storage_days": limits.max_storage_days, "compliant": not problems,
                        "problems": problems})
    return out


def storage_at(store: Store, park: str, at_ms: QueryMs = None,
               max_storage_days: float = Limits.max_storage_days) -> list[dict[str, Any]]:
    """:func:`storage` as the API asks for it: at a time (default now), against a storage limit in days."""
    return storage(store, park, at_ms or now_ms(), Limits(max_storage_days))


def manifests(store: Store, park: str, open_only: bool = False) -> list[dict[str, Any]]:
    hm, en = hazwaste_manifests, s.enterprises
    with connection(store) as conn:
        q = (select(hm, en.c.key.label("ent")).select_from(hm.join(en, en.c.id == hm.c.enterprise_id))
             .where(en.c.park_id == park_id(conn, park)))
        if open_only:
            q = q.where(hm.c.received_ms.is_(None))
        rows = conn.execute(q.order_by(hm.c.shipped_ms)).all()
    return [{"manifest_no": r.manifest_no, "enterprise": r.ent, "waste_code": r.waste_code, "category": r.category,
             "quantity_t": r.quantity_t, "transporter": r.transporter, "receiver": r.receiver,
             "shipped": r.shipped_ms, "received": r.received_ms}
            for r in rows]


def panel(store: Store, park: str, now: int) -> dict[str, Any]:
    """The environment system's panel: hazardous waste stored against its limits, manifests not received."""
    return {"hazardous_waste": storage(store, park, now), "open_manifests": manifests(store, park, open_only=True)}


RECORD_TYPE = RecordType(
    "hazwaste", System.ENVIRONMENT, "environment 环境保护", tables=(hazwaste_records, hazwaste_manifests),
    panel=panel, ops=(
        Op("POST", "/parks/{park}/hazwaste/records", "Record waste generated or used on site (危废产生/利用)",
           add_record),
        Op("POST", "/parks/{park}/hazwaste/manifests", "Record a transfer manifest (转移联单)", add_manifest),
        Op("PATCH", "/parks/{park}/hazwaste/manifests/{manifest_no}", "Receipt of a manifest (接收确认)",
           receive_manifest),
        Op("GET", "/parks/{park}/hazwaste/manifests", "Transfer manifests (转移联单列表)", manifests),
        Op("GET", "/parks/{park}/hazwaste/storage", "Stored hazardous waste and its limits (贮存情况)", storage_at),
    ))
