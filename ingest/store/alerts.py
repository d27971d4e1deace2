"""The alerts' rows: alerts, their events and the delivery outbox (docs/decisions/0008-alert-outbox.md).

Every change of an alert is written in one transaction with its event and one outbox row per
subscription that hears it, so a delivery is never lost between deciding and sending: :func:`writing`
opens the transaction, the :class:`AlertWriter` it yields makes the changes. What an event says and who
hears it are the alerts' own rules (analytics.alerts), handed in as an :class:`Announcer`. The reads the
engine, the API and the live board need follow. Subscriptions and delivery: ingest.store.alert_outbox;
a park's own rules: ingest.store.alert_rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, and_, case, false, func, select, true, update

from ingest.store import alert_outbox
from ingest.store import record_tables as t
from ingest.store import schema as s
from ingest.store.base import Store
from ingest.store.common import NotFound, RecordError, audit
from parkmon.common.clock import now_ms


class Announcer(Protocol):
    """What an event of an alert says and who hears it (``alert``: a row as :func:`alert_dict` gives it)."""

    def message(self, alert: dict[str, Any], event: str, at_ms: int) -> dict[str, str]:
        """title_zh, title_en, text_zh, text_en."""

    def hears(self, subscription: dict[str, Any], alert: dict[str, Any]) -> bool:
        """``subscription``: an enabled subscription (region, park, enterprise, kinds, systems, min_severity)."""


@dataclass(frozen=True)
class NewAlert:
    """A firing alert as it is first written."""

    rule_id: str
    subject: str
    park: str
    enterprise: str | None
    device: str | None
    metric: str | None
    kind: str
    system: str
    severity: str
    since_ms: int
    fired_ms: int
    value: float | None
    peak: float | None
    threshold: float | None
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)  # names, op, source, label: kept as JSON


@dataclass(frozen=True)
class AlertScope:
    """The alerts a reader may see: ``parks`` None is every park, an empty set none; with ``enterprise``,
    only that enterprise's."""

    parks: frozenset[str] | None = None
    enterprise: str | None = None


@dataclass(frozen=True)
class WatchedPoint:
    """A registered point with what the alert rules select it by."""

    key: str  # device.point, within its enterprise
    metric: str | None
    unit: str | None
    device: str
    device_kind: str | None  # the registry's kind, e.g. pressure_vessel


def alert_dict(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.update(json.loads(d.pop("detail") or "{}"))
    return d


def _open(conn: Connection) -> list[dict[str, Any]]:
    return [alert_dict(r) for r in conn.execute(select(t.alerts).where(t.alerts.c.state == "firing"))]


def _get(conn: Connection, alert_id: int) -> dict[str, Any]:
    row = conn.execute(select(t.alerts).where(t.alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist; GET /api/v1/alerts lists them")
    return alert_dict(row)


class AlertWriter:
    """The changes of one transaction; each writes its event and the outbox rows with it."""

    def __init__(self, conn: Connection, announcer: Announcer) -> None:
        self._conn = conn
        self._announcer = announcer

    def open_alerts(self) -> list[dict[str, Any]]:
        return _open(self._conn)

    def get(self, alert_id: int) -> dict[str, Any]:
        return _get(self._conn, alert_id)

    def fire(self, new: NewAlert) -> int:
        """A new firing alert with its event and outbox rows; returns the alert id."""
        aid = int(self._conn.execute(t.alerts.insert().values(
            rule_id=new.rule_id, subject=new.subject, park=new.park, enterprise=new.enterprise, device=new.device,
            metric=new.metric, kind=new.kind, system=new.system, severity=new.severity, state="firing",
            since_ms=new.since_ms, fired_ms=new.fired_ms, created_ms=now_ms(), value=new.value, peak=new.peak,
            threshold=new.threshold, unit=new.unit, detail=json.dumps(new.detail, ensure_ascii=False),
            escalations=0)).inserted_primary_key[0])  # type: ignore[index]
        self._event(aid, "firing", new.fired_ms, new.value)
        return aid

    def resolve(self, alert_id: int, at_ms: int, value: float | None, peak: float | None,
                event: str = "resolved", actor: str = "parkmon") -> None:
        self._conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(
            state="resolved", resolved_ms=at_ms, value=value, peak=peak))
        self._event(alert_id, event, at_ms, value, actor)

    def escalate(self, alert_id: int, at_ms: int, severity: str) -> None:
        """Up to ``severity`` (the caller's rule says how far), counted in ``escalations``."""
        a = self.get(alert_id)
        self._conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(
            severity=severity, escalations=int(a["escalations"]) + 1))
        self._event(alert_id, "escalated", at_ms, a["value"])

    def acknowledge(self, alert_id: int, actor: str, note: str = "") -> dict[str, Any]:
        a = self.get(alert_id)
        if a["acked_ms"] is not None:
            raise RecordError(f"alert {alert_id} was acknowledged by {a['acked_by']} already")
        at = now_ms()
        self._conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(acked_by=actor, acked_ms=at))
        self._event(alert_id, "acknowledged", at, a["value"], actor, deliver=False)
        audit(self._conn, actor=actor, action="acknowledge", entity="alerts", key=str(alert_id), park=a["park"],
              before={"acked_ms": None}, after={"acked_by": actor, "acked_ms": at, "note": note})
        return self.get(alert_id)

    def close(self, alert_id: int, actor: str, note: str = "") -> dict[str, Any]:
        """A person closes an alert (the cause is dealt with, or it was a false alarm); subscribers hear it."""
        a = self.get(alert_id)
        if a["state"] != "firing":
            raise RecordError(f"alert {alert_id} is {a['state']} already; only a firing alert can be resolved")
        self.resolve(alert_id, now_ms(), a["value"], a["peak"], "manual_resolve", actor)
        audit(self._conn, actor=actor, action="resolve", entity="alerts", key=str(alert_id), park=a["park"],
              before={"state": "firing"}, after={"state": "resolved", "note": note})
        return self.get(alert_id)

    def _event(self, alert_id: int, event: str, at_ms: int, value: float | None, actor: str = "parkmon",
               deliver: bool = True) -> int:
        conn = self._conn
        a = self.get(alert_id)
        a["value"] = value if value is not None else a["value"]
        msg = self._announcer.message(a, event, at_ms)
        eid = int(conn.execute(t.alert_events.insert().values(
            alert_id=alert_id, at_ms=at_ms, event=event, actor=actor, value=value, title_zh=msg["title_zh"],
            text_zh=msg["text_zh"], text_en=msg["text_en"])).inserted_primary_key[0])  # type: ignore[index]
        if deliver:
            payload = {"event": event, "at_ms": at_ms, "alert": {k: v for k, v in a.items() if k != "detail"}, **msg}
            for sub in _subscriptions(conn):
                if self._announcer.hears(sub, a):
                    # a random key kept with the row: the same on every retry, never another parkmon's
                    alert_outbox.enqueue(conn, event_id=eid, subscription_id=sub["id"], channel=sub["channel"],
                                         payload=payload, at_ms=at_ms)
        return eid


def _subscriptions(conn: Connection) -> list[dict[str, Any]]:
    """The enabled subscriptions, decoded: config a dict, kinds and systems lists (empty: all)."""
    out = []
    for r in conn.execute(select(t.alert_subscriptions).where(t.alert_subscriptions.c.enabled.is_(True))):
        d = dict(r._mapping)
        d["config"] = json.loads(d["config"])
        for k in ("kinds", "systems"):
            d[k] = [x for x in (d[k] or "").split(",") if x]
        out.append(d)
    return out


@contextmanager
def writing(store: Store, announcer: Announcer) -> Iterator[AlertWriter]:
    """One transaction: everything the writer did commits together when the block ends, or nothing."""
    with store.engine.begin() as conn:
        yield AlertWriter(conn, announcer)


# ---- reads ---------------------------------------------------------------------------------------
def open_alerts(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return _open(conn)


def get(store: Store, alert_id: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return _get(conn, alert_id)


def whose(store: Store, alert_id: int) -> tuple[str, str | None] | None:
    """The park and enterprise of an alert (None: no such alert)."""
    with store.engine.connect() as conn:
        row = conn.execute(select(t.alerts.c.park, t.alerts.c.enterprise).where(t.alerts.c.id == alert_id)).first()
    return None if row is None else (str(row[0]), row[1])


def with_history(store: Store, alert_id: int, deliveries_of: str | None = None) -> dict[str, Any]:
    """One alert with its events and their deliveries: every delivery (``deliveries_of`` None: an
    administrator), or only those to the subscriptions ``deliveries_of`` holds, the others counted in
    ``other_deliveries`` without detail (issue 20 item 4: an enterprise reading its alert does not see
    where, or how, the regulator's and the operator's copies went)."""
    ev, ob, sub = t.alert_events, t.alert_outbox, t.alert_subscriptions
    with store.engine.connect() as conn:
        a = _get(conn, alert_id)
        events = [dict(r._mapping) for r in conn.execute(
            select(ev).where(ev.c.alert_id == alert_id).order_by(ev.c.id))]
        rows = [dict(r._mapping) for r in conn.execute(
            select(ob.c.id, ob.c.event_id, ob.c.subscription_id, ob.c.channel, ob.c.idem_key, ob.c.attempts,
                   ob.c.delivered_ms, ob.c.last_error, sub.c.owner)
            .outerjoin(sub, sub.c.id == ob.c.subscription_id)
            .where(ob.c.event_id.in_([e["id"] for e in events])).order_by(ob.c.id))]
    mine = [d for d in rows if deliveries_of is None or d["owner"] == deliveries_of]
    for d in mine:
        del d["owner"]
    return {**a, "events": events, "deliveries": mine, "other_deliveries": len(rows) - len(mine)}


def _in_scope(scope: AlertScope) -> ColumnElement[bool]:
    a = t.alerts
    if scope.parks is None:
        clause: ColumnElement[bool] = true()
    else:
        clause = a.c.park.in_(sorted(scope.parks)) if scope.parks else false()
    if scope.enterprise is not None:
        clause = and_(clause, a.c.enterprise == scope.enterprise)
    return clause


def listing(store: Store, scope: AlertScope, *, park: str | None = None, enterprise: str | None = None,
            state: str | None = None, severity: str | None = None, kind: str | None = None,
            system: str | None = None, since_ms: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Alerts, newest first; each filter given narrows it (``since_ms``: fired at or after)."""
    a = t.alerts
    q = select(a).where(_in_scope(scope)).order_by(a.c.fired_ms.desc(), a.c.id.desc()).limit(limit)
    for col, v in ((a.c.park, park), (a.c.enterprise, enterprise), (a.c.state, state), (a.c.severity, severity),
                   (a.c.kind, kind), (a.c.system, system)):
        if v is not None:
            q = q.where(col == v)
    if since_ms is not None:
        q = q.where(a.c.fired_ms >= since_ms)
    with store.engine.connect() as conn:
        return [alert_dict(r) for r in conn.execute(q)]


def events_after(store: Store, scope: AlertScope, after_id: int = 0, park: str | None = None,
                 limit: int = 200) -> list[dict[str, Any]]:
    """Alert events after ``after_id``, oldest first, with their alert's park, enterprise, rule and severity."""
    ev, a = t.alert_events, t.alerts
    q = (select(ev, a.c.park, a.c.enterprise, a.c.rule_id, a.c.severity).join(a, a.c.id == ev.c.alert_id)
         .where(ev.c.id > after_id, _in_scope(scope)).order_by(ev.c.id).limit(limit))
    if park is not None:
        q = q.where(a.c.park == park)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def firing(store: Store, park: str, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """How many alerts of a park are firing, and the first ``limit`` of them, most severe and newest first,
    each with the text of its firing event (the live board's list)."""
    a, ev = t.alerts, t.alert_events
    rank = case((a.c.severity == "critical", 0), (a.c.severity == "warning", 1), else_=2)
    q = (select(a.c.id, a.c.rule_id, a.c.severity, a.c.kind, a.c.system, a.c.enterprise, a.c.device, a.c.metric,
                a.c.fired_ms, a.c.value, a.c.threshold, a.c.unit, a.c.acked_by, a.c.detail,
                ev.c.title_zh, ev.c.text_zh, ev.c.text_en)
         .join(ev, and_(ev.c.alert_id == a.c.id, ev.c.event == "firing"))
         .where(a.c.park == park, a.c.state == "firing")
         .order_by(rank, a.c.fired_ms.desc(), a.c.id.desc()))
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(a).where(a.c.park == park, a.c.state == "firing")
                             ).scalar_one()
        rows = conn.execute(q.limit(limit)).all()
    items = []
    for r in rows:
        d = dict(r._mapping)
        detail = json.loads(d.pop("detail") or "{}")
        d["name_zh"], d["name_en"] = detail.get("name_zh", ""), detail.get("name_en", "")
        items.append(d)
    return int(total), items


def watched_points(store: Store, park: str, enterprise: str) -> list[WatchedPoint]:
    """An enterprise's registered points, in one query (the engine asks at an enterprise's first sample)."""
    prefix = f"{park}.{enterprise}."
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(s.points.c.key, s.points.c.metric, s.points.c.unit, s.devices.c.key.label("dev"), s.devices.c.kind)
            .join(s.devices, s.devices.c.id == s.points.c.device_id)
            .join(s.enterprises, s.enterprises.c.id == s.devices.c.enterprise_id)
            .join(s.parks, s.parks.c.id == s.enterprises.c.park_id)
            .where(s.parks.c.key == park, s.enterprises.c.key == enterprise)).all()
    return [WatchedPoint(str(r.key)[len(prefix):], r.metric, r.unit, r.dev, r.kind) for r in rows]
