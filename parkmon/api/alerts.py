"""Alerts: list, filter, acknowledge, resolve, history; the rules of a park; subscriptions. Every
action is audited; an acknowledgement stops escalation, a manual resolve is delivered like any resolve.

A subscription belongs to its holder (issue 20 item 6): it is listed to, and deleted by, the token (or
OIDC user) that made it - ``owner``, the principal's name, the same the audit log records - and only within
its role's scope (tenancy.owns_subscription); an administrator sees all. Of an alert's deliveries a reader
sees only those to its own subscriptions, the others counted (issue 20 item 4)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request

from analytics.alerts import actions
from analytics.alerts import subscriptions as subs
from analytics.alerts.rules import Rule, load_rules, parse_rules
from ingest.store import alert_rules
from ingest.store import alerts as alert_rows
from ingest.store.common import RecordError
from parkmon.api.auth import Principal
from parkmon.api.deps import ID_MAX, MS_MAX, ActorDep, PrincipalDep, RowId, StoreDep
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import alert_scope, forbid, owns_subscription, policy

router = APIRouter(prefix=API_V1, tags=["alerts 告警"])


@router.get("/alerts", summary="Alerts, newest first, filtered (告警列表)", openapi_extra=policy("scoped"))
def list_alerts(
    store: StoreDep, who: PrincipalDep,
    park: str | None = None, enterprise: str | None = None,
    state: Literal["firing", "resolved"] | None = None,
    severity: Literal["info", "warning", "critical"] | None = None,
    kind: str | None = None, system: str | None = None,
    since_ms: Annotated[int | None, Query(ge=0, lt=MS_MAX, description="fired at or after (epoch ms)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return alert_rows.listing(store, alert_scope(who, store), park=park, enterprise=enterprise, state=state,
                              severity=severity, kind=kind, system=system, since_ms=since_ms, limit=limit)


@router.get("/alert-events", summary="Alert events after a given id, oldest first: a feed for boards (告警事件流)",
            openapi_extra=policy("scoped"))
def alert_events(store: StoreDep, who: PrincipalDep,
                 after_id: Annotated[int, Query(ge=0, le=ID_MAX)] = 0, park: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    return alert_rows.events_after(store, alert_scope(who, store), after_id, park, limit)


@router.get("/alerts/{alert_id}", summary="One alert with its history and deliveries (告警详情)",
            openapi_extra=policy("alert"))
def one_alert(store: StoreDep, who: PrincipalDep, alert_id: RowId) -> dict[str, Any]:
    return alert_rows.with_history(store, alert_id, None if who.role == "admin" else who.name)


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge: someone is on it; stops escalation (确认)",
             openapi_extra=policy("alert", writers=("operator", "regulator")))
def acknowledge(store: StoreDep, actor: ActorDep, alert_id: RowId,
                note: Annotated[str, Body(embed=True, max_length=500)] = "") -> dict[str, Any]:
    return actions.acknowledge(store, alert_id, actor, note)


@router.post("/alerts/{alert_id}/resolve", summary="Close a firing alert by hand; subscribers hear it (人工关闭)",
             openapi_extra=policy("alert", writers=("operator", "regulator")))
def resolve(request: Request, store: StoreDep, actor: ActorDep, alert_id: RowId,
            note: Annotated[str, Body(embed=True, max_length=500)] = "") -> dict[str, Any]:
    out = actions.close(store, alert_id, actor, note)
    alerts_engine = getattr(request.app.state, "alert_engine", None)
    if alerts_engine is not None:
        alerts_engine.forget(alert_id)
        alerts_engine.notify()
    return out


@router.get("/parks/{park}/alert-rules", summary="The rules watching a park: defaults and its own (告警规则)",
            openapi_extra=policy("park"))
def rules(request: Request, store: StoreDep, park: str) -> list[dict[str, Any]]:
    alerts_engine = getattr(request.app.state, "alert_engine", None)
    own = alert_rules.of_park(store, park)
    base = alerts_engine.rules if alerts_engine is not None else load_rules()
    own_ids = {r["id"] for r in own}
    return [{**r.model_dump(), "origin": "default"} for r in base
            if r.id not in own_ids and r.park in (None, park)] + [{**r, "origin": "park"} for r in own]


@router.put("/parks/{park}/alert-rules", summary="Replace a park's own rules (设置园区告警规则)",
            openapi_extra=policy("park"))
def put_rules(request: Request, store: StoreDep, actor: ActorDep, park: str,
              body: Annotated[list[dict[str, Any]], Body()]) -> list[dict[str, Any]]:
    try:
        parsed: list[Rule] = parse_rules({"rules": [{**r, "park": park} for r in body]}, f"park {park} rules")
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    alert_rules.replace(store, park, [(r.id, r.model_dump_json()) for r in parsed], actor,
                        after=[r.model_dump() for r in parsed])
    alerts_engine = getattr(request.app.state, "alert_engine", None)
    if alerts_engine is not None:
        alerts_engine.reload()
    return [r.model_dump() for r in parsed]


@router.get("/alert-subscriptions", summary="Subscriptions (订阅), secrets masked", openapi_extra=policy("scoped"))
def list_subscriptions(store: StoreDep, who: PrincipalDep) -> list[dict[str, Any]]:
    if who.role == "admin":
        return subs.listing(store)
    return [x for x in subs.listing(store, owner=who.name) if owns_subscription(who, store, x)]


def _holds(who: Principal, store: StoreDep, sub: dict[str, Any]) -> bool:
    """The subscription is the caller's: made by it and still within its scope; an administrator's, any."""
    return who.role == "admin" or (sub.get("owner") == who.name and owns_subscription(who, store, sub))


@router.post("/alert-subscriptions", summary="Subscribe a regulator, operator or enterprise to alerts (订阅)",
             openapi_extra=policy("scoped", writers=("operator", "regulator")))
def create_subscription(store: StoreDep, actor: ActorDep, who: PrincipalDep,
                        sub: subs.Subscription) -> dict[str, Any]:
    if not owns_subscription(who, store, sub.model_dump()):
        raise forbid(who, "subscribe to alerts outside its own scope")
    long = [f"{k} ({len(v)} characters)" for k in ("region", "park", "enterprise")
            if len(v := getattr(sub, k) or "") > 64]
    if long:  # VARCHAR(64) columns: PostgreSQL refused the insert, a 500
        raise HTTPException(422, f"{', '.join(long)}: at most 64 characters")
    return subs.create(store, sub, actor, owner=actor)  # actor: the principal's name (authentication on)


@router.delete("/alert-subscriptions/{sid}", summary="Delete a subscription (取消订阅)",
               openapi_extra=policy("scoped", writers=("operator", "regulator")))
def delete_subscription(store: StoreDep, actor: ActorDep, who: PrincipalDep, sid: RowId) -> dict[str, str]:
    # a subscription's scope never changes (there is no update), so checking it first is as good as inside
    if not _holds(who, store, subs.get(store, sid)):
        raise forbid(who, f"delete subscription {sid}: a subscription is deleted by its holder")
    subs.remove(store, sid, actor)
    return {"deleted": str(sid)}
