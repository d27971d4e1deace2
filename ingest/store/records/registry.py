"""The registry a park describes itself with once: park → enterprises → gateways → devices (each with
its kind, its 六系统 system, whether it is expected to report, whether it is production equipment),
loadable from YAML or CSV and editable through the API; and, per system, which expected devices
actually report.

A simulator park definition (simulators/park_default.yaml) is a valid registry file: fields the
registry does not keep (load_kw, unit ids, capacities) are ignored.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, and_, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ingest.store import schema as s
from ingest.store.base import Store
from ingest.store.records import record_types
from ingest.store.records.base import RecordError, audit, connection, enterprise_id, park_id, transaction
from ingest.store.records.logistics import gates_seen
from parkmon.common.metrics import SYSTEM_LABELS, System

# the system a device kind serves when the registry does not say
KIND_SYSTEMS: dict[str, System] = {
    **dict.fromkeys(("grid_meter", "pv", "wind", "battery", "water_meter", "gas_meter", "steam_meter",
                     "heat_meter", "it_meter", "meter"), System.ENERGY),
    **dict.fromkeys(("cems", "wastewater"), System.ENVIRONMENT),
    **dict.fromkeys(("pressure_vessel", "pipeline", "gas_detector", "valve", "fire_alarm"), System.SAFETY),
    "gate": System.LOGISTICS,
}
_KEY = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
_REF = re.compile(r"^(?:[A-Za-z0-9_-]{1,64}/)?[A-Za-z0-9_-]{1,64}$")


class DeviceEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    key: Annotated[str, _KEY, Field(alias="id")]
    name: str = ""
    kind: Annotated[str, Field(max_length=32)] = ""
    system: System | None = None
    expected: bool = True
    production: bool = False
    # meter balance (总分表平衡): this meter's flow is the sum of these devices' ("device" in the same
    # enterprise, or "enterprise/device"), compared carrier by carrier (analytics/indicators/meter_balance.py)
    sum_of: list[str] = []

    @model_validator(mode="after")
    def _system(self) -> DeviceEntry:
        bad = [r for r in self.sum_of if not _REF.match(r)]
        if bad:
            raise ValueError(f"device {self.key}: sum_of {bad} are not device keys; write 'device' (same enterprise) "
                             "or 'enterprise/device'")
        if self.system is None:
            if self.kind not in KIND_SYSTEMS:
                raise ValueError(f"device {self.key}: kind {self.kind or '(none)'!r} does not say its system; "
                                 f"set system: one of {', '.join(x.value for x in System)}")
            self.system = KIND_SYSTEMS[self.kind]
        return self


class EnterpriseEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: Annotated[str, _KEY]
    name: str = ""
    gateways: list[Annotated[str, _KEY]] = []
    devices: list[DeviceEntry] = []


class ParkEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: Annotated[str, _KEY]
    name_zh: str
    name_en: str = ""
    # the store's classes (analytics.targets.PARK_CLASSES); "general", the simulator's word, is "none"
    park_class: Literal["zero_carbon", "low_carbon", "none", "general"] = "none"
    region: str = ""


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    park: ParkEntry
    enterprises: list[EnterpriseEntry]


def read_file(path: Path) -> RegistryFile:
    """YAML (the registry / park-definition shape) or CSV (one device per line: enterprise,
    enterprise_name, device, device_name, kind, system, expected, production; park from the file name
    unless a ``park`` column says it)."""
    try:
        if path.suffix.lower() == ".csv":
            return _from_csv(path)
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        return RegistryFile.model_validate(doc)
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:  # e.g. a CSV saved by Excel in GBK
        raise RecordError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise RecordError(f"{path}: not YAML ({exc})") from None
    except ValidationError as exc:
        raise RecordError(f"{path}: " + "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())) from None
    except RecordError:
        raise
    except ValueError as exc:  # PyYAML's date constructor on a plain scalar like 2024-13-45
        raise RecordError(f"{path}: not YAML ({exc}; a YYYY-MM-DD value is read as a date: quote it)") from None


def _from_csv(path: Path) -> RegistryFile:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    need = {"enterprise", "device", "kind"}
    if not rows or not need <= set(rows[0]):
        raise RecordError(f"{path}: a registry CSV needs the columns {', '.join(sorted(need))} "
                          "(and optionally park, enterprise_name, device_name, system, expected, production, "
                          "sum_of: device keys separated by ';')")
    park = rows[0].get("park") or path.stem
    ents: dict[str, dict[str, Any]] = {}
    for r in rows:
        e = ents.setdefault(r["enterprise"], {"key": r["enterprise"], "name": r.get("enterprise_name", ""),
                                              "devices": []})
        e["devices"].append({"id": r["device"], "name": r.get("device_name", ""), "kind": r["kind"],
                             "system": r.get("system") or None,
                             "expected": (r.get("expected") or "true").lower() in ("1", "true", "yes", "是"),
                             "production": (r.get("production") or "").lower() in ("1", "true", "yes", "是"),
                             "sum_of": (r.get("sum_of") or "").replace(";", " ").split()})
    return RegistryFile.model_validate({"park": {"key": park, "name_zh": park}, "enterprises": list(ents.values())})


def _upsert(conn: Connection, table: Any, keys: dict[str, Any], values: dict[str, Any]) -> int:
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)
    stmt = ins.values(**keys, **values)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=values) if values else \
        stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt)
    return int(conn.execute(select(table.c.id).where(and_(*(table.c[k] == v for k, v in keys.items())))).scalar_one())


def load(store: Store, reg: RegistryFile, actor: str,
         progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Create or update everything the file names (never deletes: readings may hang off it), in one
    transaction."""
    p = reg.park
    n = {"enterprises": 0, "gateways": 0, "devices": 0}
    with transaction(store) as conn:
        pid = _upsert(conn, s.parks, {"key": p.key}, {
            "name_zh": p.name_zh, "name_en": p.name_en, "region": p.region,
            "park_class": "none" if p.park_class == "general" else p.park_class})
        for e in reg.enterprises:
            eid = _upsert(conn, s.enterprises, {"park_id": pid, "key": e.key}, {"name": e.name or e.key})
            n["enterprises"] += 1
            for g in e.gateways:
                _upsert(conn, s.gateways, {"enterprise_id": eid, "key": g}, {})
                n["gateways"] += 1
            for d in e.devices:
                _put_device(conn, eid, d)
                n["devices"] += 1
            if progress:
                progress(e.key)
        _check_sums(conn, pid, p.key)
        audit(conn, actor=actor, action="import", entity="registry", key=p.key, park=p.key, after=n)
    return n


def _put_device(conn: Connection, eid: int, d: DeviceEntry) -> int:
    return _upsert(conn, s.devices, {"enterprise_id": eid, "key": d.key},
                   {"name": d.name, "kind": d.kind, "system": d.system.value if d.system else None,
                    "expected": d.expected, "production": d.production,
                    "sum_of": json.dumps(d.sum_of) if d.sum_of else None})


def _refs(ent: str, sum_of: str | None) -> list[str]:
    """A device's ``sum_of`` as ``enterprise/device`` keys."""
    return [r if "/" in r else f"{ent}/{r}" for r in (json.loads(sum_of) if sum_of else [])]


def _check_sums(conn: Connection, pid: int, park: str) -> None:
    """Every device a balance names is registered in the park, and none sums itself (refused, rolled back)."""
    dv, en = s.devices, s.enterprises
    rows = conn.execute(select(en.c.key.label("ent"), dv.c.key, dv.c.sum_of)
                        .select_from(dv.join(en, en.c.id == dv.c.enterprise_id)).where(en.c.park_id == pid)).all()
    known = {f"{r.ent}/{r.key}" for r in rows}
    for r in rows:
        refs = _refs(r.ent, r.sum_of)
        missing = [x for x in refs if x not in known]
        if missing or f"{r.ent}/{r.key}" in refs:
            raise RecordError(f"device {r.ent}/{r.key}: sum_of names " + (
                f"devices not registered in park {park}: {', '.join(missing)}; register them first"
                if missing else "the device itself; list its sub-meters only"))


def put_device(store: Store, park: str, enterprise: str, d: DeviceEntry, actor: str) -> dict[str, Any]:
    """Register or edit one device, audited."""
    dv = s.devices
    with transaction(store) as conn:
        eid = enterprise_id(conn, park, enterprise)
        old = conn.execute(select(dv.c.name, dv.c.kind, dv.c.system, dv.c.expected, dv.c.production, dv.c.sum_of)
                           .where(dv.c.enterprise_id == eid, dv.c.key == d.key)).first()
        _put_device(conn, eid, d)
        _check_sums(conn, park_id(conn, park), park)
        after = d.model_dump(mode="json", by_alias=True)
        audit(conn, actor=actor, action="update" if old else "create", entity="devices",
              key=f"{enterprise}/{d.key}", park=park, before=None if old is None else dict(old._mapping), after=after)
    return {"enterprise": enterprise, **after}


def devices(store: Store, park: str) -> list[dict[str, Any]]:
    dv, en = s.devices, s.enterprises
    with connection(store) as conn:
        rows = conn.execute(select(en.c.key.label("ent"), dv.c.key, dv.c.name, dv.c.kind, dv.c.system, dv.c.expected,
                                   dv.c.production, dv.c.sum_of).select_from(dv.join(en, en.c.id == dv.c.enterprise_id))
                            .where(en.c.park_id == park_id(conn, park)).order_by(en.c.key, dv.c.key)).all()
    return [{"enterprise": r.ent, "id": r.key, "name": r.name, "kind": r.kind, "system": r.system,
             "expected": bool(r.expected), "production": bool(r.production),
             "sum_of": json.loads(r.sum_of) if r.sum_of else []} for r in rows]


def balances(store: Store, park: str) -> list[dict[str, Any]]:
    """The park's meter balances: each device with a ``sum_of`` and its members as ``enterprise/device``."""
    return [{"meter": f"{d['enterprise']}/{d['id']}", "name": d["name"], "kind": d["kind"],
             "members": _refs(d["enterprise"], json.dumps(d["sum_of"]))} for d in devices(store, park) if d["sum_of"]]


def coverage(store: Store, park: str, now: int, stale_after_ms: int = 15 * 60_000) -> list[dict[str, Any]]:
    """Per system: the devices expected to report and those that did within ``stale_after_ms``
    (meters: a reading; gates: a gate event in the last 24 h), with what is missing. A system people
    feed counts every enterprise with an expected energy meter (a producer) as expected to do its part
    there, as its record types say (``RecordType.reporting``: last month's figures, a directory entry)."""
    dv, en, pt, rd = s.devices, s.enterprises, s.points, s.readings
    with connection(store) as conn:
        pid = park_id(conn, park)
        expected = conn.execute(select(dv.c.id, dv.c.key, dv.c.kind, dv.c.system, en.c.key.label("ent"))
                                .select_from(dv.join(en, en.c.id == dv.c.enterprise_id))
                                .where(en.c.park_id == pid, dv.c.expected.is_(True))).all()
        meters = [d.id for d in expected if d.kind != "gate"]
        fresh: set[int] = set()
        if meters:
            fresh = set(conn.execute(select(pt.c.device_id).select_from(rd.join(pt, pt.c.id == rd.c.point_id))
                                     .where(pt.c.device_id.in_(meters), rd.c.ts >= now - stale_after_ms)
                                     .group_by(pt.c.device_id)).scalars())
        gates = gates_seen(conn, pid, now - 86_400_000)
        by_people: dict[System, set[str]] = {}
        for rt in record_types():
            if rt.reporting is not None:  # with two record types, an enterprise reports when it did both
                got = rt.reporting(conn, pid, now)
                by_people[rt.system] = by_people[rt.system] & got if rt.system in by_people else got
    producers = {d.ent for d in expected if d.system == System.ENERGY.value}
    out = []
    for system in System:
        mine = [d for d in expected if d.system == system.value]
        live = [d for d in mine if (d.key in gates if d.kind == "gate" else d.id in fresh)]
        ents, ents_live = {d.ent for d in mine}, {d.ent for d in live}
        missing = sorted(f"{d.ent}/{d.key}" for d in mine if d not in live)
        people = by_people.get(system)
        if people is not None:
            ents, ents_live = ents | producers, ents_live | (producers & people)
            missing += sorted(producers - people)
        zh, en_ = SYSTEM_LABELS[system]
        out.append({"system": system.value, "name_zh": zh, "name_en": en_,
                    "expected_devices": len(mine), "reporting_devices": len(live),
                    "enterprises_expected": len(ents), "enterprises_reporting": len(ents_live),
                    "missing": missing})
    return out


def latest(store: Store, park: str, system: System, since_ms: int) -> list[dict[str, Any]]:
    """The newest reading of every point of a system's devices since ``since_ms``."""
    dv, en, pt, rd = s.devices, s.enterprises, s.points, s.readings
    with connection(store) as conn:
        pts = conn.execute(select(pt.c.id, pt.c.key, pt.c.metric, pt.c.unit, pt.c.label, dv.c.key.label("dev"),
                                  en.c.key.label("ent"))
                           .select_from(pt.join(dv, dv.c.id == pt.c.device_id)
                                        .join(en, en.c.id == dv.c.enterprise_id))
                           .where(en.c.park_id == park_id(conn, park), dv.c.system == system.value)).all()
        if not pts:
            return []
        newest = (select(rd.c.point_id, func.max(rd.c.ts).label("ts"))
                  .where(rd.c.point_id.in_([p.id for p in pts]), rd.c.ts >= since_ms)
                  .group_by(rd.c.point_id).subquery())
        vals = {r.point_id: r for r in conn.execute(
            select(rd.c.point_id, rd.c.ts, rd.c.value, rd.c.quality)
            .join(newest, and_(newest.c.point_id == rd.c.point_id, newest.c.ts == rd.c.ts)))}
    out = []
    for p in pts:
        v = vals.get(p.id)
        out.append({"enterprise": p.ent, "device": p.dev, "point": p.key.split(".", 3)[-1], "metric": p.metric,
                    "unit": p.unit, "label": p.label, "ts_ms": v.ts if v else None,
                    "value": v.value if v else None, "quality": v.quality if v else None})
    return out


def production_devices(store: Store, park: str, since_ms: int) -> list[dict[str, Any]]:
    """Registered production devices, each with whether it reported (a reading) since ``since_ms``."""
    dv, en, pt, rd = s.devices, s.enterprises, s.points, s.readings
    with connection(store) as conn:
        devs = conn.execute(select(dv.c.id, dv.c.key, dv.c.name, en.c.key.label("ent"))
                            .select_from(dv.join(en, en.c.id == dv.c.enterprise_id))
                            .where(en.c.park_id == park_id(conn, park), dv.c.production.is_(True))
                            .order_by(en.c.key, dv.c.key)).all()
        if not devs:
            return []
        live = set(conn.execute(select(pt.c.device_id).select_from(rd.join(pt, pt.c.id == rd.c.point_id))
                                .where(pt.c.device_id.in_([d.id for d in devs]), rd.c.ts >= since_ms)
                                .group_by(pt.c.device_id)).scalars())
    return [{"enterprise": d.ent, "device": d.key, "name": d.name, "reporting": d.id in live} for d in devs]
