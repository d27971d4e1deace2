"""The green-power register's tables, input models and reads (ingest.store.records.green_power holds its
writes and HTTP surface; analytics.green_claims counts what :func:`entries` returns)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy import func as sql_func

from ingest.store import schema as s
from ingest.store.base import Store
from ingest.store.records.base import Forbidden, connection, enterprise_id, enterprise_keys, park_id
from parkmon.common.clock import CHINA

KWH_PER_CERTIFICATE = 1000.0  # 1 个绿证单位对应 1000 千瓦时 (发改能源〔2023〕1044号)

green_contracts = Table(
    "green_contracts", s.metadata,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=True),  # None: the park itself
    Column("key", String(64), nullable=False),  # the contract's number, unique in the park
    Column("seller", Text, nullable=False),
    Column("project", Text, nullable=False),  # the plant or project the power comes from
    Column("start_ms", BigInteger, nullable=False),  # delivery period [start, end), China days
    Column("end_ms", BigInteger, nullable=False),
    Column("contracted_kwh", Float(53), nullable=False),
    Column("settled_kwh", Float(53), nullable=True),  # None until the trading centre settles it
    Column("changed_from_ms", BigInteger, nullable=False),  # earliest time the last write changed (feeds redo)
    Column("updated_ms", BigInteger, nullable=False),
    Column("voided_ms", BigInteger, nullable=True),
    UniqueConstraint("park_id", "key"),
)

green_certificates = Table(
    "green_certificates", s.metadata,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=True),
    Column("first_id", String(64), nullable=False),  # the batch is the ids first..last (one id: both the same)
    Column("last_id", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("project", Text, nullable=False),
    Column("start_ms", BigInteger, nullable=False),  # production period [start, end), China days
    Column("end_ms", BigInteger, nullable=False),
    Column("action", String(16), nullable=False),  # bought | sold | cancelled
    Column("contract_id", Integer, ForeignKey("green_contracts.id"), nullable=True),  # 证电合一: bundled with
    Column("acted_on", String(10), nullable=True),  # date of the trade or cancellation, YYYY-MM-DD
    Column("updated_ms", BigInteger, nullable=False),
    Column("voided_ms", BigInteger, nullable=True),
    Index("ix_green_certificates_park", "park_id"),
)

Action = Literal["bought", "sold", "cancelled"]
_ENT = r"^[A-Za-z0-9_-]{1,64}$"
CERT_ID = re.compile(r"^([A-Za-z0-9_-]*?)(\d{1,30})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MAX_KWH = 1e11  # 100 TWh: beyond any park; a unit mistake (Wh for kWh) is refused


def _day(v: Any, last: bool) -> Any:
    """``YYYY-MM`` as the month's first (or last) day; anything else as pydantic reads a date."""
    if isinstance(v, datetime):
        return v.date()
    m = _MONTH.match(str(v).strip()) if isinstance(v, str) else None
    if not m:
        return v
    y, mo = int(m.group(1)), int(m.group(2))
    if not 1 <= mo <= 12:
        raise ValueError(f"{v!r} is not a month YYYY-MM")
    first = date(y, mo, 1)
    return (date(y + mo // 12, mo % 12 + 1, 1) - timedelta(days=1)) if last else first


def day_ms(d: date) -> int:
    """China midnight starting ``d``, epoch ms."""
    return int(datetime.combine(d, time(0), tzinfo=CHINA).timestamp() * 1000)


class _Period(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enterprise: Annotated[str | None, Field(pattern=_ENT, description="the holder; none: the park itself "
                                                                      "(an enterprise's token: always its own)")] = None

    def span(self) -> tuple[date, date]:
        raise NotImplementedError

    def bounds_ms(self) -> tuple[int, int]:
        a, b = self.span()
        return day_ms(a), day_ms(b + timedelta(days=1))  # inclusive days → [start, end)

    @model_validator(mode="after")
    def _ordered(self) -> _Period:
        a, b = self.span()
        if b < a:
            raise ValueError(f"the period ends ({b}) before it starts ({a})")
        if a.year < 2000 or b.year >= 3000:
            raise ValueError("the period must lie within 2000..2999")
        return self


class Contract(_Period):
    """A green-power contract (绿电交易): delivery period as China days (``YYYY-MM`` for a whole month)."""

    seller: Annotated[str, Field(min_length=1, max_length=200)]
    project: Annotated[str, Field(min_length=1, max_length=200, description="plant or project (电站/项目)")]
    period_start: date
    period_end: Annotated[date, Field(description="last day of delivery, inclusive")]
    contracted_kwh: Annotated[float, Field(ge=0, le=MAX_KWH, allow_inf_nan=False)]
    settled_kwh: Annotated[float | None, Field(ge=0, le=MAX_KWH, allow_inf_nan=False,
                                               description="what the trading centre settled; only this counts")] = None

    @field_validator("period_start", mode="before")
    @classmethod
    def _first_day(cls, v: Any) -> Any:
        return _day(v, False)

    @field_validator("period_end", mode="before")
    @classmethod
    def _last_day(cls, v: Any) -> Any:
        return _day(v, True)

    def span(self) -> tuple[date, date]:
        return self.period_start, self.period_end


class Certificates(_Period):
    """A batch of green certificates (绿证): ids ``first_id``..``last_id`` (one id: ``first_id`` alone),
    1 certificate = 1 MWh, produced in ``production_start``..``production_end`` (China days, inclusive)."""

    first_id: Annotated[str, Field(max_length=64, pattern=CERT_ID.pattern)]
    last_id: Annotated[str | None, Field(max_length=64, pattern=CERT_ID.pattern)] = None
    count: Annotated[int | None, Field(ge=1, le=10**8, description="checked against the id range")] = None
    project: Annotated[str, Field(min_length=1, max_length=200)]
    production_start: date
    production_end: date
    action: Annotated[Action, Field(description="bought 购买 / sold 出售 (own generation) / cancelled 核销")]
    contract: Annotated[str | None, Field(pattern=_ENT, description="证电合一: the contract these certificates came "
                                                                    "with (its number)")] = None
    acted_on: Annotated[date | None, Field(description="date of the trade or the cancellation")] = None

    @field_validator("production_start", mode="before")
    @classmethod
    def _first_day(cls, v: Any) -> Any:
        return _day(v, False)

    @field_validator("production_end", mode="before")
    @classmethod
    def _last_day(cls, v: Any) -> Any:
        return _day(v, True)

    def span(self) -> tuple[date, date]:
        return self.production_start, self.production_end

    def ids(self) -> tuple[str, int, int]:
        """(prefix, first number, last number) of the batch; ValueError if the range is not one."""
        a, b = CERT_ID.match(self.first_id), CERT_ID.match(self.last_id or self.first_id)
        assert a is not None and b is not None  # the field patterns
        if a.group(1) != b.group(1) or int(b.group(2)) < int(a.group(2)):
            raise ValueError(f"{self.first_id}..{self.last_id} is not a range: give ids with the same prefix, "
                             "the last not below the first")
        return a.group(1), int(a.group(2)), int(b.group(2))

    @model_validator(mode="after")
    def _batch(self) -> Certificates:
        _prefix, lo, hi = self.ids()
        if self.count is not None and self.count != hi - lo + 1:
            raise ValueError(f"count {self.count} does not match ids {self.first_id}..{self.last_id or self.first_id} "
                             f"({hi - lo + 1} certificates)")
        if self.count is None and hi - lo + 1 > 10**8:
            raise ValueError("a batch holds at most 100 000 000 certificates")
        if self.action == "sold" and self.contract:
            raise ValueError("a certificate sold is the park's own generation: it is bundled with no purchase contract")
        if self.production_start > datetime.now(CHINA).date():
            raise ValueError(f"production starts {self.production_start}, in the future: certificates are issued for "
                             "power already produced")
        return self


def contract_doc(r: Any, ents: dict[int, str]) -> dict[str, Any]:
    return {"contract": r.key, "enterprise": ents.get(r.enterprise_id) if r.enterprise_id else None,
            "seller": r.seller, "project": r.project, "period_start_ms": r.start_ms, "period_end_ms": r.end_ms,
            "contracted_kwh": r.contracted_kwh, "settled_kwh": r.settled_kwh, "voided_ms": r.voided_ms}


# ---- reads ---------------------------------------------------------------------------------------------------
def register(store: Store, park: str, enterprise: str | None = None, include_void: bool = False,
             caller_enterprise: str | None = None) -> dict[str, Any]:
    """The register: contracts and certificate batches, all holders or one enterprise's (an enterprise's
    token: its own only)."""
    if caller_enterprise is not None:
        if enterprise not in (None, caller_enterprise):
            raise Forbidden(f"enterprise {caller_enterprise!r} reads only its own green power: send "
                            f"enterprise={caller_enterprise}")
        enterprise = caller_enterprise
    gc, gcert = green_contracts, green_certificates
    with connection(store) as conn:
        pid = park_id(conn, park)
        ents = enterprise_keys(conn, pid)
        scope_c, scope_k = [gc.c.park_id == pid], [gcert.c.park_id == pid]
        if enterprise is not None:
            eid = enterprise_id(conn, park, enterprise)
            scope_c.append(gc.c.enterprise_id == eid)
            scope_k.append(gcert.c.enterprise_id == eid)
        if not include_void:
            scope_c.append(gc.c.voided_ms.is_(None))
            scope_k.append(gcert.c.voided_ms.is_(None))
        keys = {int(r.id): str(r.key) for r in conn.execute(select(gc.c.id, gc.c.key).where(gc.c.park_id == pid))}
        contracts = [contract_doc(r, ents)
                     for r in conn.execute(select(gc).where(*scope_c).order_by(gc.c.start_ms, gc.c.key))]
        certs = [{"id": r.id, "enterprise": ents.get(r.enterprise_id) if r.enterprise_id else None,
                  "first_id": r.first_id, "last_id": r.last_id, "count": r.count, "mwh": r.count,
                  "project": r.project, "production_start_ms": r.start_ms, "production_end_ms": r.end_ms,
                  "action": r.action, "contract": keys.get(r.contract_id), "acted_on": r.acted_on,
                  "voided_ms": r.voided_ms}
                 for r in conn.execute(select(gcert).where(*scope_k).order_by(gcert.c.id))]
    return {"park": park, "enterprise": enterprise, "contracts": contracts, "certificates": certs}


@dataclass(frozen=True)
class ContractEntry:
    id: int
    holder: str | None
    start_ms: int
    end_ms: int
    settled_kwh: float | None


@dataclass(frozen=True)
class CertificateEntry:
    id: int
    holder: str | None
    prefix: str
    first: int
    last: int
    start_ms: int
    end_ms: int
    action: str
    contract_id: int | None


def entries(store: Store, park: str, enterprise: str | None = None) -> tuple[list[ContractEntry],
                                                                                list[CertificateEntry]]:
    """What the counting rules read (analytics.green_claims): the park's live entries, every holder's, or
    one enterprise's. An unknown park or enterprise reads as an empty register (the indicator checks them)."""
    gc, gcert, en = green_contracts, green_certificates, s.enterprises
    with connection(store) as conn:
        pid = conn.execute(select(s.parks.c.id).where(s.parks.c.key == park)).scalar()
        if pid is None:
            return [], []
        ents = {int(k): str(v) for k, v in conn.execute(select(en.c.id, en.c.key).where(en.c.park_id == pid))}
        want = None if enterprise is None else next((k for k, v in ents.items() if v == enterprise), -1)
        cs = [ContractEntry(r.id, ents.get(r.enterprise_id), r.start_ms, r.end_ms, r.settled_kwh)
              for r in conn.execute(select(gc).where(gc.c.park_id == pid, gc.c.voided_ms.is_(None)).order_by(gc.c.id))
              if want is None or r.enterprise_id == want]
        ks = []
        for r in conn.execute(select(gcert).where(gcert.c.park_id == pid, gcert.c.voided_ms.is_(None))
                              .order_by(gcert.c.id)):
            a, b = CERT_ID.match(r.first_id), CERT_ID.match(r.last_id)
            if a and b and (want is None or r.enterprise_id == want):
                ks.append(CertificateEntry(r.id, ents.get(r.enterprise_id), a.group(1), int(a.group(2)),
                                           int(b.group(2)), r.start_ms, r.end_ms, r.action, r.contract_id))
    return cs, ks


def changes(store: Store, park: str, since_ms: int) -> tuple[int | None, int | None]:
    """(the newest write to the park's register, the earliest time touched by writes after ``since_ms``):
    what a feed that stores figures per hour must compute again."""
    gc, gcert = green_contracts, green_certificates
    with connection(store) as conn:
        pid = conn.execute(select(s.parks.c.id).where(s.parks.c.key == park)).scalar()
        if pid is None:
            return None, None
        newest = max((v for v in (
            conn.execute(select(sql_func.max(gc.c.updated_ms)).where(gc.c.park_id == pid)).scalar(),
            conn.execute(select(sql_func.max(gcert.c.updated_ms)).where(gcert.c.park_id == pid)).scalar())
            if v is not None), default=None)
        since = [v for v in (
            conn.execute(select(sql_func.min(gc.c.changed_from_ms)).where(
                gc.c.park_id == pid, gc.c.updated_ms > since_ms)).scalar(),
            conn.execute(select(sql_func.min(gcert.c.start_ms)).where(
                gcert.c.park_id == pid, gcert.c.updated_ms > since_ms)).scalar(),
            # a bundled batch counts over its contract's period
            conn.execute(select(sql_func.min(gc.c.start_ms)).select_from(gcert.join(gc, gc.c.id == gcert.c.contract_id))
                         .where(gcert.c.park_id == pid, gcert.c.updated_ms > since_ms)).scalar()) if v is not None]
    return (None if newest is None else int(newest)), (min(int(v) for v in since) if since else None)
