"""What every system's records share: errors that become clear 4xx answers, registry look-ups that
say how to fix a wrong key, and the audit log every write goes through."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from ingest.store import record_tables as t
from ingest.store import schema as s
from ingest.store.common import Conflict, NotFound, RecordError, audit, park_id

# the refusals, the park look-up and the audit log are the storage layer's (its repositories use them too)
__all__ = ["Conflict", "NotFound", "RecordError", "audit", "audit_trail", "enterprise_id", "enterprise_keys",
           "park_id"]


def enterprise_id(conn: Connection, park: str, enterprise: str) -> int:
    pid = park_id(conn, park)
    found = conn.execute(select(s.enterprises.c.id).where(
        s.enterprises.c.park_id == pid, s.enterprises.c.key == enterprise)).scalar()
    if found is None:
        known = conn.execute(select(s.enterprises.c.key).where(s.enterprises.c.park_id == pid)
                             .order_by(s.enterprises.c.key)).scalars().all()
        raise NotFound(f"enterprise {enterprise!r} is not registered in park {park!r} "
                       f"(registered: {', '.join(known) or 'none'})")
    return int(found)


def enterprise_keys(conn: Connection, park_id_: int) -> dict[int, str]:
    rows = conn.execute(select(s.enterprises.c.id, s.enterprises.c.key).where(s.enterprises.c.park_id == park_id_))
    return {int(r.id): str(r.key) for r in rows}


def audit_trail(conn: Connection, park: str, entity: str | None = None, key: str | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
    a = t.audit_log
    q = select(a).where(a.c.park == park)
    if entity:
        q = q.where(a.c.entity == entity)
    if key:
        q = q.where(a.c.entity_key == key)
    rows = conn.execute(q.order_by(a.c.id.desc()).limit(limit)).all()
    return [{"at_ms": r.at_ms, "actor": r.actor, "action": r.action, "entity": r.entity, "key": r.entity_key,
             "before": None if r.before is None else json.loads(r.before),
             "after": None if r.after is None else json.loads(r.after)} for r in rows]
