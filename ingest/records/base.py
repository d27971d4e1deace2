"""What every system's records share: errors that become clear 4xx answers, registry look-ups that
say how to fix a wrong key, and the audit log every write goes through."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from ingest.store import record_tables as t
from ingest.store import schema as s
from parkmon.common.clock import now_ms


class RecordError(ValueError):
    """Input the platform refuses; ``status`` is the HTTP status the API answers with."""

    status = 422


class NotFound(RecordError):
    status = 404


class Conflict(RecordError):
    status = 409




def park_id(conn: Connection, park: str) -> int:
    found = conn.execute(select(s.parks.c.id).where(s.parks.c.key == park)).scalar()
    if found is None:
        raise NotFound(f"park {park!r} is not registered; GET /api/v1/parks lists the parks, "
                       "`parkmon registry load` registers one")
    return int(found)


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


def audit(conn: Connection, *, actor: str, action: str, entity: str, key: str, park: str,
          before: Any = None, after: Any = None) -> None:
    """Record a write in the same transaction as the write itself: no change without its trace."""
    conn.execute(t.audit_log.insert().values(
        at_ms=now_ms(), actor=actor, action=action, entity=entity, entity_key=key, park=park,
        before=None if before is None else json.dumps(before, ensure_ascii=False, sort_keys=True),
        after=None if after is None else json.dumps(after, ensure_ascii=False, sort_keys=True)))


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
