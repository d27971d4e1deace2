"""经济运行监测: monthly output value, industrial value added and production quantities per
enterprise, entered through the API or imported from CSV / Excel, validated and audited.

Money is in 万元 (10 000 yuan) as the statistical reports give it. An import is all or nothing: a
file with one impossible figure is refused whole, with every bad line and why, so a half-loaded month
never reaches the indicators.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

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
from ingest.store.records.base import RecordError, audit, connection, enterprise_id, park_id, transaction
from ingest.store.records.spec import Op, RecordType, Upload
from parkmon.common.clock import CHINA, now_ms
from parkmon.common.metrics import System

# monthly figures per enterprise (万元 = 10k yuan) and production quantities
economic_figures = Table(
    "economic_figures", s.metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM
    Column("output_value", Float(53), nullable=True),  # 工业总产值, 万元
    Column("value_added", Float(53), nullable=True),  # 工业增加值, 万元
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("enterprise_id", "month"),
)

production_quantities = Table(
    "production_quantities", s.metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("month", String(7), nullable=False),
    Column("product", String(128), nullable=False),
    Column("quantity", Float(53), nullable=False),
    Column("unit", String(16), nullable=False),
    UniqueConstraint("enterprise_id", "month", "product"),
)

MAX_10K_YUAN = 1e8  # 1 万亿元 a month: beyond any single enterprise, so a unit mistake (元 for 万元)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def past_month(v: str) -> str:
    """``v`` if it is a YYYY-MM month from 2000 up to this one (China calendar); else ValueError saying why.
    Every record type filed by month checks its month with this."""
    m = _MONTH.match(v)
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 2000:
        raise ValueError(f"month {v!r} is not YYYY-MM (e.g. 2026-10)")
    this = datetime.now(CHINA).strftime("%Y-%m")
    if v > this:
        raise ValueError(f"month {v} is in the future (this month is {this})")
    return v


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: Annotated[str, Field(min_length=1, max_length=128)]
    quantity: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    unit: Annotated[str, Field(min_length=1, max_length=16)]


class MonthlyFigures(BaseModel):
    """One enterprise's month. At least one figure; value added cannot exceed output value."""

    model_config = ConfigDict(extra="forbid")
    enterprise: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    month: Annotated[str, Field(description="YYYY-MM, China time")]
    output_value: Annotated[float | None, Field(ge=0, le=MAX_10K_YUAN, allow_inf_nan=False,
                                                description="工业总产值, 万元")] = None
    value_added: Annotated[float | None, Field(ge=0, le=MAX_10K_YUAN, allow_inf_nan=False,
                                               description="工业增加值, 万元")] = None
    products: list[Product] = []

    @field_validator("month")
    @classmethod
    def _month(cls, v: str) -> str:
        return past_month(v)

    @model_validator(mode="after")
    def _consistent(self) -> MonthlyFigures:
        if self.output_value is None and self.value_added is None and not self.products:
            raise ValueError("no figure given: send output_value, value_added or products")
        if self.output_value is not None and self.value_added is not None and self.value_added > self.output_value:
            raise ValueError(f"value_added {self.value_added} exceeds output_value {self.output_value}: "
                             "industrial value added is part of output value (both in 万元)")
        names = [p.product for p in self.products]
        if len(set(names)) != len(names):
            raise ValueError("a product appears twice in the same month")
        return self


def _as_dict(conn: Connection, eid: int, month: str) -> dict[str, Any] | None:
    ef, pq = economic_figures, production_quantities
    row = conn.execute(select(ef).where(ef.c.enterprise_id == eid, ef.c.month == month)).first()
    prods = conn.execute(select(pq.c.product, pq.c.quantity, pq.c.unit)
                         .where(pq.c.enterprise_id == eid, pq.c.month == month).order_by(pq.c.product)).all()
    if row is None and not prods:
        return None
    return {"month": month, "output_value": row.output_value if row else None,
            "value_added": row.value_added if row else None,
            "products": [{"product": p.product, "quantity": p.quantity, "unit": p.unit} for p in prods]}


def upsert(store: Store, park: str, fig: MonthlyFigures, actor: str) -> dict[str, Any]:
    """Set an enterprise's month (figures not given keep their value); audited with before and after."""
    with transaction(store) as conn:
        return _upsert(conn, park, fig, actor, "update")


def _upsert(conn: Connection, park: str, fig: MonthlyFigures, actor: str, action: str) -> dict[str, Any]:
    eid = enterprise_id(conn, park, fig.enterprise)
    before = _as_dict(conn, eid, fig.month)
    ef, pq = economic_figures, production_quantities
    values = {k: v for k, v in (("output_value", fig.output_value), ("value_added", fig.value_added))
              if v is not None}
    merged = {**(before or {}), **values}
    ov, va = merged.get("output_value"), merged.get("value_added")
    if ov is not None and va is not None and va > ov:
        raise RecordError(f"{fig.enterprise} {fig.month}: value_added {va} would exceed output_value {ov}")
    if conn.execute(select(ef.c.id).where(ef.c.enterprise_id == eid, ef.c.month == fig.month)).first() is None:
        conn.execute(ef.insert().values(enterprise_id=eid, month=fig.month, updated_ms=now_ms(), **values))
    else:
        conn.execute(ef.update().where(ef.c.enterprise_id == eid, ef.c.month == fig.month)
                     .values(updated_ms=now_ms(), **values))
    for p in fig.products:
        conn.execute(pq.delete().where(pq.c.enterprise_id == eid, pq.c.month == fig.month,
                                       pq.c.product == p.product))
        conn.execute(pq.insert().values(enterprise_id=eid, month=fig.month, product=p.product,
                                        quantity=p.quantity, unit=p.unit))
    after = _as_dict(conn, eid, fig.month)
    audit(conn, actor=actor, action=action, entity="economic_figures", key=f"{fig.enterprise}/{fig.month}",
          park=park, before=before, after=after)
    assert after is not None
    return {"enterprise": fig.enterprise, **after}


def figures(store: Store, park: str, start: str = "2000-01", end: str = "9999-12",
            enterprise: str | None = None) -> list[dict[str, Any]]:
    """Months (YYYY-MM, ``start`` to ``end``) with figures or products, by month then enterprise (two
    queries, whatever the span)."""
    ef, pq, en = economic_figures, production_quantities, s.enterprises
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with connection(store) as conn:
        scope = [en.c.park_id == park_id(conn, park)] + ([en.c.key == enterprise] if enterprise else [])
        for r in conn.execute(select(en.c.key, ef.c.month, ef.c.output_value, ef.c.value_added)
                              .join(en, en.c.id == ef.c.enterprise_id)
                              .where(*scope, ef.c.month >= start, ef.c.month <= end)):
            out[(r.month, r.key)] = {"enterprise": r.key, "month": r.month, "output_value": r.output_value,
                                     "value_added": r.value_added, "products": []}
        for pr in conn.execute(select(en.c.key, pq.c.month, pq.c.product, pq.c.quantity, pq.c.unit)
                               .join(en, en.c.id == pq.c.enterprise_id)
                               .where(*scope, pq.c.month >= start, pq.c.month <= end)
                               .order_by(pq.c.product)):
            d = out.setdefault((pr.month, pr.key), {"enterprise": pr.key, "month": pr.month, "output_value": None,
                                                    "value_added": None, "products": []})
            d["products"].append({"product": pr.product, "quantity": pr.quantity, "unit": pr.unit})
    return [out[k] for k in sorted(out)]


def filed(conn: Connection, park_id_: int, now: int) -> set[str]:
    """Enterprises with figures for the last complete month (China calendar): the economy system's
    coverage counts them as reporting."""
    local = datetime.fromtimestamp(now / 1000, tz=CHINA)
    y, m = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    ef, en = economic_figures, s.enterprises
    return set(conn.execute(select(en.c.key).join(ef, ef.c.enterprise_id == en.c.id)
                            .where(en.c.park_id == park_id_, ef.c.month == f"{y:04d}-{m:02d}")).scalars())


# ---- import ----------------------------------------------------------------------------------
COLUMNS = ("enterprise", "month", "output_value", "value_added", "product", "quantity", "unit")
# the headers of the templates parks already keep, in Chinese, map onto ours
HEADER_ALIASES = {"企业": "enterprise", "企业编码": "enterprise", "月份": "month", "工业总产值": "output_value",
                  "工业总产值(万元)": "output_value", "工业增加值": "value_added", "工业增加值(万元)": "value_added",
                  "产品": "product", "产品名称": "product", "产量": "quantity", "单位": "unit"}


@dataclass
class ImportResult:
    lines: int = 0
    months: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line in the file, what is wrong)
    valid: list[dict[str, Any]] = field(default_factory=list)  # the enterprise-months, checked


def read_rows(path: Path, columns: Sequence[str], aliases: Mapping[str, str],
              required: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a CSV (UTF-8, with or without BOM) or .xlsx file as dicts keyed by ``columns`` (headers may be
    their Chinese ``aliases``); empty cells left out. Every record type's import reads its file with this."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook  # only imports need it

        ws = load_workbook(path, read_only=True, data_only=True).active
        if ws is None:
            raise RecordError(f"{path}: the workbook has no sheet")
        cells = [list(r) for r in ws.iter_rows(values_only=True)]
    elif path.suffix.lower() in (".csv", ".txt"):
        cells = [list(r) for r in csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")))]
    else:
        raise RecordError(f"{path}: give a .csv or .xlsx file (got {path.suffix or 'no extension'})")
    if not cells:
        raise RecordError(f"{path}: the file is empty")
    header = [aliases.get(str(h).strip(), str(h).strip()) if h is not None else "" for h in cells[0]]
    unknown = [h for h in header if h and h not in columns]
    if unknown or any(r not in header for r in required):
        zh = ", ".join(k for k in aliases if aliases[k] in required)
        raise RecordError(f"{path}: header must have {', '.join(required)}, then any of "
                          f"{', '.join(c for c in columns if c not in required)} (Chinese headers such as {zh} work "
                          f"too); unknown: {', '.join(unknown) or 'none'}")
    return [{h: c for h, c in zip(header, row, strict=False) if h and c not in (None, "")}
            for row in cells[1:] if any(c not in (None, "") for c in row)]


def read_table(path: Path) -> list[dict[str, Any]]:
    """The economic figures' file (:data:`COLUMNS`; 企业, 月份, 工业总产值 … work as headers too)."""
    return read_rows(path, COLUMNS, HEADER_ALIASES, ("enterprise", "month"))


def _month_text(v: Any) -> str:
    if isinstance(v, datetime):  # Excel keeps a typed month as a date
        return v.strftime("%Y-%m")
    return str(v).strip().replace("/", "-").replace(".", "-")


def import_rows(store: Store, park: str, rows: Iterable[dict[str, Any]], actor: str, source: str,
                progress: Callable[[int], None] | None = None) -> ImportResult:
    """Validate every line first; write (audited, one transaction) only if all are good."""
    with transaction(store) as conn:
        res = _check_rows(conn, park, rows)
        if res.errors:
            return res
        for i, doc in enumerate(res.valid, start=1):
            _upsert(conn, park, MonthlyFigures.model_validate(doc), actor, f"import:{source}")
            if progress:
                progress(i)
    res.months = len(res.valid)
    return res


def _check_rows(conn: Connection, park: str, rows: Iterable[dict[str, Any]]) -> ImportResult:
    res = ImportResult()
    months: dict[tuple[str, str], dict[str, Any]] = {}
    known = {r.key for r in conn.execute(select(s.enterprises.c.key).where(
        s.enterprises.c.park_id == park_id(conn, park)))}
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        res.lines += 1
        try:
            ent, month = str(row.get("enterprise", "")).strip(), _month_text(row.get("month", ""))
            if ent not in known:
                raise RecordError(f"enterprise {ent!r} is not registered in park {park!r}")
            doc = months.setdefault((ent, month), {"enterprise": ent, "month": month, "products": []})
            for k in ("output_value", "value_added"):
                if k in row:
                    if doc.get(k) is not None and float(row[k]) != doc[k]:
                        raise RecordError(f"{k} for {ent} {month} given twice with different values")
                    doc[k] = float(row[k])
            if "product" in row:
                doc["products"].append({"product": str(row["product"]), "quantity": float(row.get("quantity", "nan")),
                                        "unit": str(row.get("unit", ""))})
            MonthlyFigures.model_validate(doc)
        except ValidationError as exc:
            res.errors.append((n, "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'row'}: {e['msg']}"
                                            for e in exc.errors())))
        except (RecordError, ValueError) as exc:
            res.errors.append((n, str(exc)))
    res.valid = list(months.values())
    return res


def import_file(store: Store, park: str, file: Upload, actor: str) -> dict[str, Any]:
    """An uploaded CSV or Excel file, all or nothing: a refusal lists every bad line with why."""
    name = Path(file.filename or "upload.csv").name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(file.content)
        rows = read_table(path)
    res = import_rows(store, park, rows, actor, name)
    if res.errors:
        raise RecordError(f"{name}: nothing imported, {len(res.errors)} bad line(s) of {res.lines}", detail={
            "file": name, "lines": res.lines, "nothing_imported": True,
            "errors": [{"line": n, "reason": why} for n, why in res.errors]})
    return {"file": name, "lines": res.lines, "months": res.months}


def panel(store: Store, park: str, now: int) -> dict[str, Any]:
    """The economy system's panel: the latest month anyone filed, and its figures."""
    figs = figures(store, park)
    last = max((f["month"] for f in figs), default=None)
    return {"latest_month": last, "figures": [f for f in figs if f["month"] == last]}


RECORD_TYPE = RecordType(
    "economy", System.ECONOMY, "economy 经济运行", tables=(economic_figures, production_quantities), panel=panel,
    reporting=filed, ops=(
        Op("PUT", "/parks/{park}/economy", "Set an enterprise's monthly figures (录入月度经济数据)", upsert),
        Op("GET", "/parks/{park}/economy", "Monthly figures (月度经济数据)", figures, enterprise="query"),
        Op("POST", "/parks/{park}/economy/import", "Import figures from CSV or Excel (批量导入)", import_file,
           description="All or nothing: any bad line refuses the file, and every bad line is listed with why."),
    ))
