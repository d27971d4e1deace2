"""What every record type shares: errors that become clear 4xx answers, the transaction each operation
runs in, registry look-ups that say how to fix a wrong key, and the audit log every write goes through
(and its trail, served beside the record types' routes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError

from ingest.store import record_tables as t
from ingest.store import schema as s
from ingest.store.base import Store, StoreError
from ingest.store.common import Conflict, NotFound, RecordError, audit, park_id
from ingest.store.records.spec import Http, Op

# the refusals, the park look-up and the audit log are the storage layer's (its repositories use them too)
__all__ = ["AUDIT", "Conflict", "Forbidden", "NotFound", "RecordError", "audit", "audit_trail", "connection",
           "enterprise_id", "enterprise_keys", "park_id", "transaction"]



class Forbidden(RecordError):
    """What the caller's token may not do within a route it may use (e.g. act in another enterprise's name)."""

    status = 403


@contextmanager
def transaction(store: Store, failure: str | None = None) -> Iterator[Connection]:
    """Committed when the block ends, rolled back when it raises. With ``failure``, a database error
    becomes :class:`StoreError` ("{failure}: why"): transient, so ingest holds its messages and retries;
    a refusal (``RecordError``) passes unchanged."""
    try:
        with store.engine.begin() as conn:
            yield conn
    except DBAPIError as exc:
        if failure is None:
            raise
        raise StoreError(f"{failure}: {exc.orig or exc}") from exc


@contextmanager
def connection(store: Store) -> Iterator[Connection]:
    """For reads."""
    with store.engine.connect() as conn:
        yield conn


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


def audit_trail(store: Store, park: str, entity: str | None = None, key: str | None = None,
                limit: Annotated[int, Http("query", ge=1)] = 200) -> list[dict[str, Any]]:
    """The newest writes first, at most 1000 (``limit`` at least 1: PostgreSQL refuses LIMIT -1)."""
    a = t.audit_log
    q = select(a).where(a.c.park == park)
    if entity:
        q = q.where(a.c.entity == entity)
    if key:
        q = q.where(a.c.entity_key == key)
    with connection(store) as conn:
        rows = conn.execute(q.order_by(a.c.id.desc()).limit(min(limit, 1000))).all()
    return [{"at_ms": r.at_ms, "actor": r.actor, "action": r.action, "entity": r.entity, "key": r.entity_key,
             "before": None if r.before is None else json.loads(r.before),
             "after": None if r.after is None else json.loads(r.after)} for r in rows]


# the trail of every record type's writes, served with their routes
AUDIT = Op("GET", "/parks/{park}/audit", "Audit trail of writes (操作审计)", audit_trail)
