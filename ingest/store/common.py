"""What the repositories of the storage layer share: the refusals that become clear 4xx answers, the park
look-up that says how to fix a wrong key, and the audit log every write goes through.

They live here, below the six systems' record types, so a repository (ingest.store.alerts, ...) can raise
and audit without importing them; ``ingest.store.records.base`` re-exports them."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from ingest.store import record_tables as t
from ingest.store import schema as s
from ingest.store.base import Store
from parkmon.common.clock import now_ms
from parkmon.common.secrecy import redact


class RecordError(ValueError):
    """Input the platform refuses; ``status`` is the HTTP status the API answers with. ``detail``: an
    answer with more than the message (e.g. every bad line of a file), which the API sends as it is."""

    status = 422

    def __init__(self, message: str = "", detail: Any = None) -> None:
        super().__init__(message)
        self.detail = detail


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


def audit(conn: Connection, *, actor: str, action: str, entity: str, key: str, park: str,
          before: Any = None, after: Any = None) -> None:
    """Record a write in the same transaction as the write itself: no change without its trace. The audit is
    read by a park's operator: a URL's password or secret query value (``token=``, ``access_token=``, ``sign=``
    …) and the process's own secrets are masked here, whatever the caller passed (issue 20 item 4; alert
    subscriptions mask their whole configuration first: ingest.store.alert_outbox.shown)."""
    conn.execute(t.audit_log.insert().values(
        at_ms=now_ms(), actor=actor, action=action, entity=entity, entity_key=key, park=park,
        before=None if before is None else json.dumps(_masked(before), ensure_ascii=False, sort_keys=True),
        after=None if after is None else json.dumps(_masked(after), ensure_ascii=False, sort_keys=True)))


def _masked(value: Any) -> Any:
    """Every string within masked, value by value (masking the JSON text could break an escape)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def audit_request(store: Store, *, actor: str, method: str, path: str, park: str, status: int) -> None:
    """An API write's own trace, in a transaction of its own (the write's answer is already decided).
    The caller's values are fitted to the columns (park VARCHAR(64), action VARCHAR(32), no NUL on
    PostgreSQL): else the audit row would fail a request already answered."""
    park = park if len(park) <= 64 and "\x00" not in park else ""
    with store.engine.begin() as conn:
        audit(conn, actor=actor, action=method.lower()[:32], entity="api", key=path.replace("\x00", "\\x00"),
              park=park, after={"status": status})
