"""The alert rules a park set through the API (``alert_rules``; the defaults live in
analytics/alerts/rules.yaml). A rule is kept as its JSON body; analytics.alerts.rules parses it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from ingest.store import record_tables as t
from ingest.store.base import Store
from ingest.store.common import audit, park_id
from parkmon.common.clock import now_ms


def bodies(store: Store) -> list[str]:
    """Every park's rules, as stored."""
    with store.engine.connect() as conn:
        return [r.body for r in conn.execute(select(t.alert_rules.c.body))]


def stamp(store: Store) -> tuple[Any, int]:
    """(newest change, how many): when it differs, the rules changed (maybe in another process)."""
    with store.engine.connect() as conn:
        row = conn.execute(select(func.max(t.alert_rules.c.updated_ms), func.count())
                           .select_from(t.alert_rules)).first()
    return (row[0], row[1]) if row is not None else (None, 0)


def _of(conn: Connection, park: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in conn.execute(select(t.alert_rules.c.body).where(t.alert_rules.c.park == park))]


def of_park(store: Store, park: str) -> list[dict[str, Any]]:
    """A park's own rules (NotFound for a park nobody registered)."""
    with store.engine.connect() as conn:
        park_id(conn, park)
        return _of(conn, park)


def replace(store: Store, park: str, rules: Sequence[tuple[str, str]], actor: str, after: Any) -> None:
    """A park's own rules become ``rules`` ((id, JSON body) each), audited with ``after`` as the new state."""
    with store.engine.begin() as conn:
        park_id(conn, park)
        before = _of(conn, park)
        conn.execute(t.alert_rules.delete().where(t.alert_rules.c.park == park))
        for rule_id, body in rules:
            conn.execute(t.alert_rules.insert().values(id=rule_id, park=park, body=body, updated_ms=now_ms()))
        audit(conn, actor=actor, action="update", entity="alert_rules", key=park, park=park, before=before,
              after=after)
