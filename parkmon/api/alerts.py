"""Alerts: list, filter, acknowledge, resolve, history; the rules of a park; subscriptions. Every
action is audited; an acknowledgement stops escalation, a manual resolve is delivered like any resolve."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request
from sqlalchemy import Connection, select

from analytics.alerts import store as alert_store
from analytics.alerts import subscriptions as subs
from analytics.alerts.rules import Rule, load_rules, parse_rules
from ingest.records.base import RecordError, audit, park_id
from ingest.store import record_tables as t
from parkmon.api.deps import ID_MAX, MS_MAX, ActorDep, EngineDep, PrincipalDep, RowId
from parkmon.api.tenancy import alert_scope, forbid, owns_subscription
from parkmon.common.clock import now_ms

router = APIRouter(tags=["alerts 告警"])


@router.get("/alerts", summary="Alerts, newest first, filtered (告警列表)")
def list_alerts(
    request: Request, engine: EngineDep, who: PrincipalDep,
    park: str | None = None, enterprise: str | None = None,
    state: Literal["firing", "resolved"] | None = None,
    severity: Literal["info", "warning", "critical"] | None = None,
    kind: str | None = None, system: str | None = None,
    since_ms: Annotated[int | None, Query(ge=0, lt=MS_MAX, description="fired at or after (epoch ms)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    a = t.alerts
    q = (select(a).where(alert_scope(who, request.app.state.store))
         .order_by(a.c.fired_ms.desc(), a.c.id.desc()).limit(limit))
    for col, v in ((a.c.park, park), (a.c.enterprise, enterprise), (a.c.state, state), (a.c.severity, severity),
                   (a.c.kind, kind), (a.c.system, system)):
        if v is not None:
            q = q.where(col == v)
    if since_ms is not None:
        q = q.where(a.c.fired_ms >= since_ms)
    with engine.connect() as conn:
        return [alert_store.alert_dict(r) for r in conn.execute(q)]


@router.get("/alert-events", summary="Alert events after a given id, oldest first: a feed for boards (告警事件流)")
def alert_events(request: Request, engine: EngineDep, who: PrincipalDep,
                 after_id: Annotated[int, Query(ge=0, le=ID_MAX)] = 0, park: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    ev, a = t.alert_events, t.alerts
    q = (select(ev, a.c.park, a.c.enterprise, a.c.rule_id, a.c.severity).join(a, a.c.id == ev.c.alert_id)
         .where(ev.c.id > after_id, alert_scope(who, request.app.state.store)).order_by(ev.c.id).limit(limit))
    if park is not None:
        q = q.where(a.c.park == park)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


@router.get("/alerts/{alert_id}", summary="One alert with its history and deliveries (告警详情)")
def one_alert(engine: EngineDep, alert_id: RowId) -> dict[str, Any]:
    with engine.connect() as conn:
        a = alert_store.get_alert(conn, alert_id)
        events = [dict(r._mapping) for r in conn.execute(
            select(t.alert_events).where(t.alert_events.c.alert_id == alert_id).order_by(t.alert_events.c.id))]
        ob = t.alert_outbox
        deliveries = [dict(r._mapping) for r in conn.execute(
            select(ob.c.id, ob.c.event_id, ob.c.subscription_id, ob.c.channel, ob.c.idem_key, ob.c.attempts,
                   ob.c.delivered_ms, ob.c.last_error)
            .where(ob.c.event_id.in_([e["id"] for e in events])).order_by(ob.c.id))]
    return {**a, "events": events, "deliveries": deliveries}


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge: someone is on it; stops escalation (确认)")
def acknowledge(engine: EngineDep, actor: ActorDep, alert_id: RowId,
                note: Annotated[str, Body(embed=True, max_length=500)] = "") -> dict[str, Any]:
    with engine.begin() as conn:
        return alert_store.acknowledge(conn, alert_id, actor, note)


@router.post("/alerts/{alert_id}/resolve", summary="Close a firing alert by hand; subscribers hear it (人工关闭)")
def resolve(request: Request, engine: EngineDep, actor: ActorDep, alert_id: RowId,
            note: Annotated[str, Body(embed=True, max_length=500)] = "") -> dict[str, Any]:
    with engine.begin() as conn:
        out = alert_store.close(conn, alert_id, actor, note)
    alerts_engine = getattr(request.app.state, "alert_engine", None)
    if alerts_engine is not None:
        alerts_engine.forget(alert_id)
        alerts_engine.notify()
    return out


def _park_rules(conn: Connection, park: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in conn.execute(select(t.alert_rules.c.body).where(t.alert_rules.c.park == park))]


@router.get("/parks/{park}/alert-rules", summary="The rules watching a park: defaults and its own (告警规则)")
def rules(request: Request, engine: EngineDep, park: str) -> list[dict[str, Any]]:
    alerts_engine = getattr(request.app.state, "alert_engine", None)
    with engine.connect() as conn:
        park_id(conn, park)
        own = _park_rules(conn, park)
    base = alerts_engine.rules if alerts_engine is not None else load_rules()
    own_ids = {r["id"] for r in own}
    return [{**r.model_dump(), "origin": "default"} for r in base
            if r.id not in own_ids and r.park in (None, park)] + [{**r, "origin": "park"} for r in own]


@router.put("/parks/{park}/alert-rules", summary="Replace a park's own rules (设置园区告警规则)")
def put_rules(request: Request, engine: EngineDep, actor: ActorDep, park: str,
              body: Annotated[list[dict[str, Any]], Body()]) -> list[dict[str, Any]]:
    try:
        parsed: list[Rule] = parse_rules({"rules": [{**r, "park": park} for r in body]}, f"park {park} rules")
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    with engine.begin() as conn:
        park_id(conn, park)
        before = _park_rules(conn, park)
        conn.execute(t.alert_rules.delete().where(t.alert_rules.c.park == park))
        for r in parsed:
            conn.execute(t.alert_rules.insert().values(id=r.id, park=park, body=r.model_dump_json(),
                                                       updated_ms=now_ms()))
        audit(conn, actor=actor, action="update", entity="alert_rules", key=park, park=park, before=before,
              after=[r.model_dump() for r in parsed])
    alerts_engine = getattr(request.app.state, "alert_engine", None)
    if alerts_engine is not None:
        alerts_engine.reload()
    return [r.model_dump() for r in parsed]


@router.get("/alert-subscriptions", summary="Subscriptions (订阅), secrets masked")
def list_subscriptions(request: Request, engine: EngineDep, who: PrincipalDep) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [x for x in subs.listing(conn) if owns_subscription(who, request.app.state.store, x)]


@router.post("/alert-subscriptions", summary="Subscribe a regulator, operator or enterprise to alerts (订阅)")
def create_subscription(request: Request, engine: EngineDep, actor: ActorDep, who: PrincipalDep,
                        sub: subs.Subscription) -> dict[str, Any]:
    if not owns_subscription(who, request.app.state.store, sub.model_dump()):
        raise forbid(who, "subscribe to alerts outside its own scope")
    long = [f"{k} ({len(v)} characters)" for k in ("region", "park", "enterprise")
            if len(v := getattr(sub, k) or "") > 64]
    if long:  # VARCHAR(64) columns: PostgreSQL refused the insert, a 500
        raise HTTPException(422, f"{', '.join(long)}: at most 64 characters")
    with engine.begin() as conn:
        return subs.create(conn, sub, actor)


@router.delete("/alert-subscriptions/{sid}", summary="Delete a subscription (取消订阅)")
def delete_subscription(request: Request, engine: EngineDep, actor: ActorDep, who: PrincipalDep,
                        sid: RowId) -> dict[str, str]:
    with engine.begin() as conn:
        if not owns_subscription(who, request.app.state.store, subs.get(conn, sid)):
            raise forbid(who, f"delete subscription {sid}")
        subs.remove(conn, sid, actor)
    return {"deleted": str(sid)}
