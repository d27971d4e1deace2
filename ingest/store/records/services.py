"""综合服务: the park's enterprise directory, notices from the park to its enterprises, and the
enterprises' service requests with their status."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Column, Connection, Float, ForeignKey, Integer, String, Table, Text, select

from ingest.store import schema as s
from ingest.store.base import Store
from ingest.store.records.base import (
    Forbidden,
    NotFound,
    RecordError,
    audit,
    connection,
    enterprise_id,
    enterprise_keys,
    park_id,
    transaction,
)
from ingest.store.records.spec import Op, RecordType, RowId
from parkmon.common.clock import now_ms
from parkmon.common.metrics import System

# the park's enterprise directory (one row per enterprise, optional)
enterprise_profiles = Table(
    "enterprise_profiles", s.metadata,
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), primary_key=True),
    Column("industry", Text, nullable=False, default=""),
    Column("credit_code", String(18), nullable=False, default=""),  # 统一社会信用代码
    Column("contact_name", Text, nullable=False, default=""),
    Column("contact_phone", String(32), nullable=False, default=""),
    Column("address", Text, nullable=False, default=""),
    # 危险废物: the storage the enterprise's permit / facility allows, in tonnes (None: not set)
    Column("hazwaste_storage_limit_t", Float(53), nullable=True),
)

# notices from the park to its enterprises, and the enterprises' service requests
notices = Table(
    "notices", s.metadata,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("audience", Text, nullable=False, default="*"),  # * or a JSON list of enterprise keys
    Column("published_ms", BigInteger, nullable=False),
)

service_requests = Table(
    "service_requests", s.metadata,
    Column("id", Integer, primary_key=True),
    Column("park_id", Integer, ForeignKey("parks.id"), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("category", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False, default="open"),
    Column("reply", Text, nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

_KEY = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    industry: str = ""
    credit_code: Annotated[str, Field(pattern=r"^([0-9A-HJ-NPQRTUWXY]{18})?$",
                                      description="统一社会信用代码 (18 characters)")] = ""
    contact_name: str = ""
    contact_phone: Annotated[str, Field(pattern=r"^(\+?[0-9][0-9 -]{5,20})?$")] = ""
    address: str = ""
    hazwaste_storage_limit_t: Annotated[float | None, Field(ge=0, allow_inf_nan=False)] = None


class Notice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(min_length=1)]
    audience: list[Annotated[str, _KEY]] | None = None  # None: every enterprise of the park


class ServiceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enterprise: Annotated[str, _KEY]
    category: Literal["power", "water", "gas", "steam", "environment", "safety", "logistics", "policy", "other"]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: str = ""


class RequestUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "in_progress", "resolved", "closed"]
    reply: str | None = None


STATUS_LABELS = {"open": ("待受理", "open"), "in_progress": ("处理中", "in progress"),
                 "resolved": ("已解决", "resolved"), "closed": ("已关闭", "closed")}
# where a request may go next; reopening a resolved request is allowed, a closed one stays closed
_NEXT = {"open": {"in_progress", "resolved", "closed"}, "in_progress": {"resolved", "closed", "open"},
         "resolved": {"closed", "open"}, "closed": set()}


def put_profile(store: Store, park: str, enterprise: str, p: Profile, actor: str) -> dict[str, Any]:
    ep = enterprise_profiles
    with transaction(store) as conn:
        eid = enterprise_id(conn, park, enterprise)
        old = conn.execute(select(ep).where(ep.c.enterprise_id == eid)).first()
        if old is None:
            conn.execute(ep.insert().values(enterprise_id=eid, **p.model_dump()))
        else:
            conn.execute(ep.update().where(ep.c.enterprise_id == eid).values(**p.model_dump()))
        audit(conn, actor=actor, action="create" if old is None else "update", entity="enterprise_profiles",
              key=enterprise, park=park,
              before=None if old is None else {k: getattr(old, k) for k in Profile.model_fields},
              after=p.model_dump())
    return {"enterprise": enterprise, **p.model_dump()}


def directory(store: Store, park: str) -> list[dict[str, Any]]:
    en, ep = s.enterprises, enterprise_profiles
    with connection(store) as conn:
        rows = conn.execute(select(en.c.key, en.c.name, *[ep.c[k] for k in Profile.model_fields])
                            .select_from(en.outerjoin(ep, ep.c.enterprise_id == en.c.id))
                            .where(en.c.park_id == park_id(conn, park)).order_by(en.c.key)).all()
    return [{"enterprise": r.key, "name": r.name, **{k: getattr(r, k) for k in Profile.model_fields}}
            for r in rows]


def listed(conn: Connection, park_id_: int, now: int) -> set[str]:
    """Enterprises whose directory entry gives a contact phone: the services system's coverage counts
    them as reporting."""
    en, ep = s.enterprises, enterprise_profiles
    return set(conn.execute(select(en.c.key).join(ep, ep.c.enterprise_id == en.c.id)
                            .where(en.c.park_id == park_id_, ep.c.contact_phone != "")).scalars())


def publish_notice(store: Store, park: str, n: Notice, actor: str) -> dict[str, Any]:
    with transaction(store) as conn:
        pid = park_id(conn, park)
        for ent in n.audience or []:
            enterprise_id(conn, park, ent)  # a notice to an unknown enterprise is a mistake, not a no-op
        nid = conn.execute(notices.insert().values(
            park_id=pid, title=n.title, body=n.body, published_ms=now_ms(),
            audience="*" if n.audience is None else json.dumps(n.audience)).returning(notices.c.id)).scalar_one()
        audit(conn, actor=actor, action="create", entity="notices", key=str(nid), park=park, after=n.model_dump())
    return {"id": nid, **n.model_dump()}


def notices_for(store: Store, park: str, enterprise: str | None = None,
                caller_enterprise: str | None = None) -> list[dict[str, Any]]:
    # an enterprise's token sees only the notices addressed to it or to all (issue 20 item 8), whatever
    # ?enterprise= asks: another enterprise's addressed notices are not its to read
    if caller_enterprise is not None:
        if enterprise not in (None, caller_enterprise):
            raise Forbidden(f"enterprise {caller_enterprise!r} may read only its own notices: "
                            f"drop ?enterprise= or send enterprise={caller_enterprise}")
        enterprise = caller_enterprise
    with connection(store) as conn:
        pid = park_id(conn, park)
        if enterprise:
            enterprise_id(conn, park, enterprise)
        rows = conn.execute(select(notices).where(notices.c.park_id == pid).order_by(notices.c.id.desc())).all()
    out = []
    for r in rows:
        audience = None if r.audience == "*" else json.loads(r.audience)
        if enterprise is None or audience is None or enterprise in audience:
            out.append({"id": r.id, "title": r.title, "body": r.body, "audience": audience,
                        "published_ms": r.published_ms})
    return out


def open_request(store: Store, park: str, req: ServiceRequest, actor: str,
                 caller_enterprise: str | None = None) -> dict[str, Any]:
    # an enterprise files in its own name only (issue 20 item 7): the token says which, never the body;
    # an operator files for any enterprise of its park
    if caller_enterprise is not None and req.enterprise != caller_enterprise:
        raise Forbidden(f"enterprise {caller_enterprise!r} may file service requests only in its own name: "
                          f"send \"enterprise\": \"{caller_enterprise}\" in the body")
    with transaction(store) as conn:
        pid = park_id(conn, park)
        eid = enterprise_id(conn, park, req.enterprise)
        now = now_ms()
        rid = conn.execute(service_requests.insert().values(
            park_id=pid, enterprise_id=eid, category=req.category, title=req.title, body=req.body, status="open",
            created_ms=now, updated_ms=now).returning(service_requests.c.id)).scalar_one()
        audit(conn, actor=actor, action="create", entity="service_requests", key=str(rid), park=park,
              after=req.model_dump())
    return {"id": rid, "status": "open", **req.model_dump()}


def update_request(store: Store, park: str, request_id: RowId, u: RequestUpdate, actor: str) -> dict[str, Any]:
    sr = service_requests
    with transaction(store) as conn:
        pid = park_id(conn, park)
        row = conn.execute(select(sr).where(sr.c.id == request_id, sr.c.park_id == pid)).first()
        if row is None:
            raise NotFound(f"service request {request_id} is not in park {park}")
        if u.status != row.status and u.status not in _NEXT[row.status]:
            raise RecordError(f"service request {request_id} is {row.status}; it can go to "
                              f"{', '.join(sorted(_NEXT[row.status])) or 'nothing (closed for good)'}, "
                              f"not {u.status}")
        values: dict[str, Any] = {"status": u.status, "updated_ms": now_ms()}
        if u.reply is not None:
            values["reply"] = u.reply
        conn.execute(sr.update().where(sr.c.id == request_id).values(**values))
        audit(conn, actor=actor, action="update", entity="service_requests", key=str(request_id), park=park,
              before={"status": row.status, "reply": row.reply},
              after={"status": u.status, "reply": values.get("reply", row.reply)})
    return {"id": request_id, "status": u.status, "reply": values.get("reply", row.reply)}


def requests(store: Store, park: str, status: Literal["open", "in_progress", "resolved", "closed"] | None = None,
             enterprise: str | None = None) -> list[dict[str, Any]]:
    sr = service_requests
    with connection(store) as conn:
        pid = park_id(conn, park)
        ents = enterprise_keys(conn, pid)
        q = select(sr).where(sr.c.park_id == pid)
        if status:
            q = q.where(sr.c.status == status)
        if enterprise:
            q = q.where(sr.c.enterprise_id == enterprise_id(conn, park, enterprise))
        rows = conn.execute(q.order_by(sr.c.id.desc())).all()
    return [{"id": r.id, "enterprise": ents[r.enterprise_id], "category": r.category, "title": r.title,
             "body": r.body, "status": r.status, "status_zh": STATUS_LABELS[r.status][0], "reply": r.reply,
             "created_ms": r.created_ms, "updated_ms": r.updated_ms}
            for r in rows]


def panel(store: Store, park: str, now: int) -> dict[str, Any]:
    """The services system's panel: the directory's size, open requests and the newest notices."""
    return {"enterprises": len(directory(store, park)), "open_requests": requests(store, park, status="open"),
            "notices": notices_for(store, park)[:10]}


RECORD_TYPE = RecordType(
    "services", System.SERVICES, "services 综合服务", tables=(enterprise_profiles, notices, service_requests),
    panel=panel, reporting=listed, ops=(
        Op("PUT", "/parks/{park}/enterprises/{enterprise}/profile", "Directory entry (企业名录信息)", put_profile,
           writers=("operator", "enterprise")),
        Op("GET", "/parks/{park}/directory", "Enterprise directory (企业名录)", directory, enterprise="read"),
        Op("POST", "/parks/{park}/notices", "Publish a notice (发布通知)", publish_notice),
        Op("GET", "/parks/{park}/notices", "Notices, all or those one enterprise receives (通知公告)", notices_for,
           enterprise="read"),
        Op("POST", "/parks/{park}/service-requests", "Open a service request (服务申请)", open_request,
           enterprise="query", writers=("operator", "enterprise")),
        Op("PATCH", "/parks/{park}/service-requests/{request_id}", "Update its status or reply (受理/答复)",
           update_request),
        Op("GET", "/parks/{park}/service-requests", "Service requests (服务申请列表)", requests, enterprise="query"),
    ))
