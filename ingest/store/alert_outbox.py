"""Alert delivery's rows: the outbox the dispatcher (analytics.alerts.dispatch) works through, and the
subscriptions that fill it (docs/decisions/0008-alert-outbox.md).

Delivery reads only the outbox: :func:`claim` leases what is due (``next_try_ms`` moved ahead in its own
short transaction), the dispatcher sends, then :func:`delivered` or :func:`failed` marks the row. A
dispatcher killed in between sends again once the lease runs out: at least once. :func:`enqueue` writes a
row in the transaction of its event, with its idempotency key."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from ingest.store import record_tables as t
from ingest.store.base import Store
from ingest.store.common import NotFound, RecordError, audit
from parkmon.common.clock import now_ms
from parkmon.common.secrecy import mask_config, redact


def new_key() -> str:
    """An idempotency key: random (122 bits), not derived from row ids, which start again at 1 in every new
    database and repeat after a restore from backup - a receiver keeping the keys it saw would drop real
    alerts of a second parkmon or a rebuilt database. Stored with its row, so every retry sends the same."""
    return uuid.uuid4().hex


def enqueue(conn: Connection, *, event_id: int, subscription_id: int, channel: str, payload: dict[str, Any],
            at_ms: int) -> str:
    """One delivery of an event to a subscription, in the event's transaction; returns its key (also the
    message's ``id``: webhook header, MQTT ``id``, mail Message-ID)."""
    key = new_key()
    conn.execute(t.alert_outbox.insert().values(
        event_id=event_id, subscription_id=subscription_id, idem_key=key, channel=channel,
        payload=json.dumps({**payload, "id": key}, ensure_ascii=False), created_ms=at_ms, next_try_ms=0,
        attempts=0))
    return key


@dataclass(frozen=True)
class Due:
    """An outbox row leased for sending."""

    id: int
    subscription_id: int
    channel: str
    message: dict[str, Any]  # the payload as the channel sends it
    attempts: int  # before this one
    config: dict[str, Any] | None  # the subscription's, None when it was deleted meanwhile


def claim(store: Store, now_ms: int, lease_ms: int, batch: int) -> list[Due]:
    """Lease up to ``batch`` due rows until ``now_ms + lease_ms``. Each subscription's rows go out in
    order (the first not yet due holds the rest back: a resolve never overtakes its firing), one per
    subscription and round."""
    ob, subs = t.alert_outbox, t.alert_subscriptions
    with store.engine.begin() as conn:
        rows = conn.execute(
            select(ob.c.id, ob.c.subscription_id, ob.c.channel, ob.c.payload, ob.c.attempts, ob.c.next_try_ms)
            .where(ob.c.delivered_ms.is_(None)).order_by(ob.c.id).limit(batch * 10)).all()
        due, held = [], set()
        for r in rows:
            if r.subscription_id in held:
                continue
            if r.next_try_ms > now_ms:
                held.add(r.subscription_id)
                continue
            due.append(r)
            held.add(r.subscription_id)
            if len(due) >= batch:
                break
        if not due:
            return []
        # "still due" in the WHERE: a row another dispatcher leased meanwhile is left to it
        conn.execute(update(ob).where(ob.c.id.in_([r.id for r in due]), ob.c.next_try_ms <= now_ms)
                     .values(next_try_ms=now_ms + lease_ms))
        configs = {sc.id: json.loads(sc.config) for sc in conn.execute(
            select(subs.c.id, subs.c.config).where(subs.c.id.in_({r.subscription_id for r in due})))}
    return [Due(r.id, r.subscription_id, r.channel, json.loads(r.payload), r.attempts,
                configs.get(r.subscription_id)) for r in due]


def delivered(store: Store, outbox_id: int, attempts: int, at_ms: int) -> None:
    ob = t.alert_outbox
    with store.engine.begin() as conn:
        conn.execute(update(ob).where(and_(ob.c.id == outbox_id, ob.c.delivered_ms.is_(None))).values(
            delivered_ms=at_ms, attempts=attempts, last_error=None))


def failed(store: Store, outbox_id: int, attempts: int, error: str, next_try_ms: int) -> None:
    ob = t.alert_outbox
    with store.engine.begin() as conn:
        conn.execute(update(ob).where(ob.c.id == outbox_id).values(
            attempts=attempts, last_error=redact(error)[:500], next_try_ms=next_try_ms))


# ---- subscriptions -------------------------------------------------------------------------------
def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A subscription as it is shown (and audited): secrets masked - secret keys, URLs' passwords, query
    tokens and path tokens - they never leave the platform again."""
    cfg = row["config"] if isinstance(row["config"], dict) else json.loads(row["config"])
    row = {**row, "config": mask_config(cfg)}
    for k in ("kinds", "systems"):
        if isinstance(row.get(k), str):
            row[k] = [x for x in row[k].split(",") if x]
    return row


def create_subscription(store: Store, *, name: str, role: str, region: str | None, park: str | None,
                        enterprise: str | None, kinds: Sequence[str], systems: Sequence[str], min_severity: str,
                        channel: str, config: dict[str, Any], actor: str, owner: str | None = None
                        ) -> dict[str, Any]:
    """``owner``: who holds it (the token's or OIDC user's name); by default the actor making it."""
    row = {"name": name, "role": role, "region": region, "park": park, "enterprise": enterprise,
           "kinds": ",".join(kinds), "systems": ",".join(systems), "min_severity": min_severity,
           "channel": channel, "config": json.dumps(config), "enabled": True, "created_ms": now_ms(),
           "owner": owner if owner is not None else actor}
    with store.engine.begin() as conn:
        sid = int(conn.execute(t.alert_subscriptions.insert().values(**row)).inserted_primary_key[0])  # type: ignore[index]
        audit(conn, actor=actor, action="create", entity="alert_subscriptions", key=str(sid), park=park or "",
              after=shown({**row, "id": sid}))
        return _subscription(conn, sid)


def subscription(store: Store, sid: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return _subscription(conn, sid)


def _subscription(conn: Connection, sid: int) -> dict[str, Any]:
    r = conn.execute(select(t.alert_subscriptions).where(t.alert_subscriptions.c.id == sid)).first()
    if r is None:
        raise NotFound(f"subscription {sid} does not exist; GET /api/v1/alert-subscriptions lists them")
    return shown(dict(r._mapping))


def subscriptions(store: Store, owner: str | None = None) -> list[dict[str, Any]]:
    """Every subscription, or (``owner`` given) only that holder's."""
    sub = t.alert_subscriptions
    q = select(sub).order_by(sub.c.id)
    if owner is not None:
        q = q.where(sub.c.owner == owner)
    with store.engine.connect() as conn:
        return [shown(dict(r._mapping)) for r in conn.execute(q)]


def remove_subscription(store: Store, sid: int, actor: str) -> None:
    """Refused while it has undelivered rows: they would never go out."""
    with store.engine.begin() as conn:
        before = _subscription(conn, sid)
        pending = conn.execute(select(t.alert_outbox.c.id).where(
            t.alert_outbox.c.subscription_id == sid, t.alert_outbox.c.delivered_ms.is_(None))).first()
        if pending is not None:
            raise RecordError(f"subscription {sid} still has undelivered alerts; disable it (or wait) before deleting")
        conn.execute(delete(t.alert_subscriptions).where(t.alert_subscriptions.c.id == sid))
        audit(conn, actor=actor, action="delete", entity="alert_subscriptions", key=str(sid),
              park=before.get("park") or "", before=before)
