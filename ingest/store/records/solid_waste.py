"""工业固体废物: an enterprise's monthly general industrial solid waste (一般工业固体废物) and hazardous waste
totals — generated, utilised (综合利用), of that utilised from earlier years' stock, disposed, stored — the
inputs of the zero-carbon park's guiding indicator 工业固体废物综合利用率 (analytics/indicators/zc_solid_waste.py).

Tonnes, by enterprise, month and waste (粉煤灰, 炉渣, 脱硫石膏, 冶炼废渣, …; its category general or
hazardous). Entered through the API (an enterprise for itself only, audited) or imported from CSV / Excel,
all or nothing with every bad line and why (decision 0006).
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
    select,
)

from ingest.store import schema as s
from ingest.store.base import Store
from ingest.store.records.base import Forbidden, RecordError, audit, connection, enterprise_id, park_id, transaction
from ingest.store.records.economy import past_month, read_rows
from ingest.store.records.spec import Op, RecordType, Upload
from parkmon.common.clock import now_ms
from parkmon.common.metrics import System

solid_waste_months = Table(
    "solid_waste_months", s.metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM, China calendar
    Column("waste", String(64), nullable=False),
    Column("category", String(16), nullable=False),  # general | hazardous
    Column("generated_t", Float(53), nullable=False),
    Column("utilised_t", Float(53), nullable=False),
    Column("utilised_from_stock_t", Float(53), nullable=False),
    Column("disposed_t", Float(53), nullable=False),
    Column("stored_t", Float(53), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("enterprise_id", "month", "waste"),
)

MAX_T = 1e8  # 100 million t a month: beyond any enterprise, so a unit mistake (kg for t) is refused
_T = Field(ge=0, le=MAX_T, allow_inf_nan=False)
FIELDS = ("generated_t", "utilised_t", "utilised_from_stock_t", "disposed_t", "stored_t")


class WasteMonth(BaseModel):
    """One waste of one enterprise in one month, in tonnes. Utilised includes what came from earlier years'
    stock (``utilised_from_stock_t``), which therefore cannot exceed it."""

    model_config = ConfigDict(extra="forbid")
    enterprise: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None  # an enterprise: itself
    month: Annotated[str, Field(description="YYYY-MM, China calendar")]
    waste: Annotated[str, Field(min_length=1, max_length=64, description="e.g. 粉煤灰 fly ash, 炉渣 slag")]
    category: Literal["general", "hazardous"] = "general"
    generated_t: Annotated[float, _T]
    utilised_t: Annotated[float, _T] = 0.0
    utilised_from_stock_t: Annotated[float, _T] = 0.0
    disposed_t: Annotated[float, _T] = 0.0
    stored_t: Annotated[float, _T] = 0.0

    @field_validator("month")
    @classmethod
    def _month(cls, v: str) -> str:
        return past_month(v)

    @model_validator(mode="after")
    def _consistent(self) -> WasteMonth:
        if self.utilised_from_stock_t > self.utilised_t:
            raise ValueError(f"utilised_from_stock_t {self.utilised_from_stock_t} exceeds utilised_t "
                             f"{self.utilised_t}: what was utilised from stock is part of what was utilised")
        return self


def _doc(r: Any, ent: str) -> dict[str, Any]:
    return {"enterprise": ent, "month": r.month, "waste": r.waste, "category": r.category,
            **{f: getattr(r, f) for f in FIELDS}}


def put_month(store: Store, park: str, w: WasteMonth, actor: str,
              caller_enterprise: str | None = None) -> dict[str, Any]:
    """Set an enterprise's month of one waste (replacing what it said before); audited with before and after."""
    with transaction(store) as conn:
        return _put(conn, park, w, actor, caller_enterprise, "update")


def _put(conn: Connection, park: str, w: WasteMonth, actor: str, caller_enterprise: str | None,
         action: str) -> dict[str, Any]:
    if caller_enterprise is not None and w.enterprise not in (None, caller_enterprise):
        raise Forbidden(f"enterprise {caller_enterprise!r} records its own solid waste only: drop \"enterprise\" "
                        f"or send \"enterprise\": \"{caller_enterprise}\"")
    ent = caller_enterprise or w.enterprise
    if ent is None:
        raise RecordError("say whose waste it is: \"enterprise\": \"<its key>\"")
    eid = enterprise_id(conn, park, ent)
    t = solid_waste_months
    key = (t.c.enterprise_id == eid, t.c.month == w.month, t.c.waste == w.waste)
    row = conn.execute(select(t).where(*key)).first()
    values = {"category": w.category, **{f: getattr(w, f) for f in FIELDS}, "updated_ms": now_ms()}
    if row is None:
        conn.execute(t.insert().values(enterprise_id=eid, month=w.month, waste=w.waste, **values))
    else:
        conn.execute(t.update().where(*key).values(**values))
    after = _doc(conn.execute(select(t).where(*key)).one(), ent)
    audit(conn, actor=actor, action=action, entity="solid_waste_months", key=f"{ent}/{w.month}/{w.waste}",
          park=park, before=None if row is None else _doc(row, ent), after=after)
    return after


def months(store: Store, park: str, start: str = "2000-01", end: str = "9999-12",
           enterprise: str | None = None) -> list[dict[str, Any]]:
    """Months ``start``..``end`` (YYYY-MM) of every enterprise (or one), by month, enterprise and waste."""
    t, en = solid_waste_months, s.enterprises
    with connection(store) as conn:
        scope = [en.c.park_id == park_id(conn, park)] + ([en.c.key == enterprise] if enterprise else [])
        rows = conn.execute(select(t, en.c.key.label("ent")).join(en, en.c.id == t.c.enterprise_id)
                            .where(*scope, t.c.month >= start, t.c.month <= end)
                            .order_by(t.c.month, en.c.key, t.c.waste)).all()
    return [_doc(r, r.ent) for r in rows]


# ---- import ----------------------------------------------------------------------------------
COLUMNS = ("enterprise", "month", "waste", "category", *FIELDS)
HEADER_ALIASES = {"企业": "enterprise", "月份": "month", "固废名称": "waste", "废物名称": "waste", "类别": "category",
                  "产生量": "generated_t", "综合利用量": "utilised_t", "利用往年贮存量": "utilised_from_stock_t",
                  "处置量": "disposed_t", "贮存量": "stored_t"}


def import_file(store: Store, park: str, file: Upload, actor: str,
                caller_enterprise: str | None = None) -> dict[str, Any]:
    """An uploaded CSV or Excel file, all or nothing: a refusal lists every bad line with why."""
    name = Path(file.filename or "upload.csv").name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(file.content)
        rows = read_rows(path, COLUMNS, HEADER_ALIASES, ("enterprise", "month", "waste", "generated_t"))
    errors: list[dict[str, Any]] = []
    with transaction(store) as conn:
        checked = []
        for n, row in enumerate(rows, start=2):  # line 1 is the header
            try:
                month = row.get("month")
                if isinstance(month, datetime):  # Excel keeps a typed month as a date
                    row["month"] = month.strftime("%Y-%m")
                checked.append(WasteMonth.model_validate({k: str(v).strip() for k, v in row.items()}))
            except ValidationError as exc:
                errors.append({"line": n, "reason": "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'row'}: "
                                                              f"{e['msg']}" for e in exc.errors())})
        if not errors:
            for n, w in enumerate(checked, start=2):
                try:
                    _put(conn, park, w, actor, caller_enterprise, f"import:{name}")
                except RecordError as exc:
                    errors.append({"line": n, "reason": str(exc)})
        if errors:  # raised inside the transaction: whatever was written is rolled back
            raise RecordError(f"{name}: nothing imported, {len(errors)} bad line(s) of {len(rows)}", detail={
                "file": name, "lines": len(rows), "nothing_imported": True, "errors": errors})
    return {"file": name, "lines": len(rows), "months": len(checked)}


def panel(store: Store, park: str, now: int) -> dict[str, Any]:
    """The environment panel's part: the latest month anyone filed, its totals by category."""
    rows = months(store, park)
    last = max((r["month"] for r in rows), default=None)
    latest = [r for r in rows if r["month"] == last]
    return {"solid_waste_month": last, "solid_waste": latest}


_W = ("operator", "enterprise")
RECORD_TYPE = RecordType(
    "solid_waste", System.ENVIRONMENT, "solid waste 工业固废", tables=(solid_waste_months,), panel=panel, ops=(
        Op("PUT", "/parks/{park}/solid-waste", "Set an enterprise's month of one solid waste (录入工业固废月报)",
           put_month, enterprise="query", writers=_W),
        Op("GET", "/parks/{park}/solid-waste", "Monthly industrial solid waste (工业固废月报)", months,
           enterprise="query"),
        Op("POST", "/parks/{park}/solid-waste/import", "Import solid-waste months from CSV or Excel (批量导入)",
           import_file, enterprise="query", writers=_W,
           description="All or nothing: any bad line refuses the file, and every bad line is listed with why."),
    ))
