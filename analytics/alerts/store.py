"""Alert state in the database: every state change is committed together with its outbox rows (one per
matching subscription), so a delivery is never lost between deciding and sending. Functions over a
SQLAlchemy connection; the caller owns the transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from analytics.alerts.messages import render
from analytics.alerts.rules import SEVERITIES, Rule
from ingest.records.base import NotFound, RecordError, audit
from ingest.store import record_tables as t
from parkmon.common.clock import now_ms


@dataclass(frozen=True)
class Subject:
    """Where an alert is: the keys, and the words a message needs."""

    key: str
    park: str
    enterprise: str | None = None
    device: str | None = None
    metric: str | None = None
    unit: str = ""
    label_zh: str = ""
    park_name: str = ""
    region: str = ""


def alert_dict(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.update(json.loads(d.pop("detail") or "{}"))
    return d


def open_alerts(conn: Connection) -> list[dict[str, Any]]:
    return [alert_dict(r) for r in conn.execute(select(t.alerts).where(t.alerts.c.state == "firing"))]


def fire(conn: Connection, rule: Rule, subj: Subject, at_ms: int, since_ms: int, value: float | None,
         peak: float | None, threshold: float | None = None) -> int:
    """A new firing alert with its event and outbox rows; returns the alert id."""
    detail = {"name_zh": rule.name_zh, "name_en": rule.name_en, "op": rule.op, "source": rule.source,
              "label_zh": subj.label_zh, "park_name": subj.park_name, "region": subj.region}
    aid = int(conn.execute(t.alerts.insert().values(
        rule_id=rule.id, subject=subj.key, park=subj.park, enterprise=subj.enterprise, device=subj.device,
        metric=subj.metric, kind=rule.kind, system=rule.system, severity=rule.severity, state="firing",
        since_ms=since_ms, fired_ms=at_ms, created_ms=now_ms(), value=value, peak=peak,
        threshold=rule.threshold if threshold is None else threshold, unit=subj.unit,
        detail=json.dumps(detail, ensure_ascii=False), escalations=0)).inserted_primary_key[0])  # type: ignore[index]
    add_event(conn, aid, "firing", at_ms, value)
    return aid


def resolve(conn: Connection, alert_id: int, at_ms: int, value: float | None, peak: float | None,
            event: str = "resolved", actor: str = "parkmon") -> None:
    conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(
        state="resolved", resolved_ms=at_ms, value=value, peak=peak))
    add_event(conn, alert_id, event, at_ms, value, actor)


def escalate(conn: Connection, alert_id: int, at_ms: int) -> str:
    a = get_alert(conn, alert_id)
    sev = SEVERITIES[min(len(SEVERITIES) - 1, SEVERITIES.index(a["severity"]) + 1)]
    conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(
        severity=sev, escalations=int(a["escalations"]) + 1))
    add_event(conn, alert_id, "escalated", at_ms, a["value"])
    return sev


def acknowledge(conn: Connection, alert_id: int, actor: str, note: str = "") -> dict[str, Any]:
    a = get_alert(conn, alert_id)
    if a["acked_ms"] is not None:
        raise RecordError(f"alert {alert_id} was acknowledged by {a['acked_by']} already")
    at = now_ms()
    conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(acked_by=actor, acked_ms=at))
    add_event(conn, alert_id, "acknowledged", at, a["value"], actor, deliver=False)
    audit(conn, actor=actor, action="acknowledge", entity="alerts", key=str(alert_id), park=a["park"],
          before={"acked_ms": None}, after={"acked_by": actor, "acked_ms": at, "note": note})
    return get_alert(conn, alert_id)


def close(conn: Connection, alert_id: int, actor: str, note: str = "") -> dict[str, Any]:
    """A person closes an alert (the cause is dealt with, or it was a false alarm); subscribers hear it."""
    a = get_alert(conn, alert_id)
    if a["state"] != "firing":
        raise RecordError(f"alert {alert_id} is {a['state']} already; only a firing alert can be resolved")
    resolve(conn, alert_id, now_ms(), a["value"], a["peak"], "manual_resolve", actor)
    audit(conn, actor=actor, action="resolve", entity="alerts", key=str(alert_id), park=a["park"],
          before={"state": "firing"}, after={"state": "resolved", "note": note})
    return get_alert(conn, alert_id)


def get_alert(conn: Connection, alert_id: int) -> dict[str, Any]:
    row = conn.execute(select(t.alerts).where(t.alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist; GET /api/v1/alerts lists them")
    return alert_dict(row)


def add_event(conn: Connection, alert_id: int, event: str, at_ms: int, value: float | None,
              actor: str = "parkmon", deliver: bool = True) -> int:
    a = get_alert(conn, alert_id)
    a["value"] = value if value is not None else a["value"]
    msg = render(a, "resolved" if event == "manual_resolve" else event, at_ms)
    eid = int(conn.execute(t.alert_events.insert().values(
        alert_id=alert_id, at_ms=at_ms, event=event, actor=actor, value=value, title_zh=msg["title_zh"],
        text_zh=msg["text_zh"], text_en=msg["text_en"])).inserted_primary_key[0])  # type: ignore[index]
    if deliver:
        payload = {"event": event, "at_ms": at_ms, "alert": {k: v for k, v in a.items() if k != "detail"}, **msg}
        for sub in subscriptions(conn):
            if matches(sub, a):
                key = hashlib.sha256(f"{eid}:{sub['id']}".encode()).hexdigest()[:32]
                conn.execute(t.alert_outbox.insert().values(
                    event_id=eid, subscription_id=sub["id"], idem_key=key, channel=sub["channel"],
                    payload=json.dumps({**payload, "id": key}, ensure_ascii=False), created_ms=at_ms,
                    next_try_ms=0, attempts=0))
    return eid


def subscriptions(conn: Connection) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute(select(t.alert_subscriptions).where(t.alert_subscriptions.c.enabled.is_(True))):
        d = dict(r._mapping)
        d["config"] = json.loads(d["config"])
        out.append(d)
    return out


def matches(sub: dict[str, Any], a: dict[str, Any]) -> bool:
    """Who hears what: a regulator its region (or every park, region unset), a park operator its park,
    an enterprise its own devices; then the kinds, systems and least severity it asked for."""
    if sub["region"] and sub["region"] != a.get("region"):
        return False
    if sub["park"] and sub["park"] != a["park"]:
        return False
    if sub["enterprise"] and sub["enterprise"] != a.get("enterprise"):
        return False
    kinds = [k for k in (sub["kinds"] or "").split(",") if k]
    systems = [s for s in (sub["systems"] or "").split(",") if s]
    return (not kinds or a["kind"] in kinds) and (not systems or a["system"] in systems) and \
        SEVERITIES.index(a["severity"]) >= SEVERITIES.index(sub["min_severity"])
