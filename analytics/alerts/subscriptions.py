"""Who hears which alerts, through which channel: a regulator (生态环境、工信、应急) a region or kinds of
alert across all parks, a park operator its park, an enterprise its own devices."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, delete, select

from analytics.alerts.channels import CHANNELS, load
from analytics.alerts.rules import Kind, Severity
from ingest.records.base import NotFound, RecordError, audit
from ingest.store import record_tables as t
from parkmon.common.clock import now_ms

SECRET_FIELDS = ("secret", "password")


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=128)]
    role: Literal["regulator", "operator", "enterprise"]
    region: str | None = None
    park: str | None = None
    enterprise: str | None = None
    kinds: list[Kind] = []
    systems: list[str] = []
    min_severity: Severity = "info"
    channel: str
    config: dict[str, Any]

    @model_validator(mode="after")
    def _scoped(self) -> Subscription:
        if self.role == "operator" and not self.park:
            raise ValueError("a park operator's subscription names its park")
        if self.role == "enterprise" and not (self.park and self.enterprise):
            raise ValueError("an enterprise's subscription names its park and enterprise")
        if self.channel not in CHANNELS:
            raise ValueError(f"channel {self.channel!r} unknown; known: {', '.join(sorted(CHANNELS))}")
        load(self.channel).check(self.config)
        return self


def create(conn: Connection, sub: Subscription, actor: str) -> dict[str, Any]:
    row = sub.model_dump()
    row.update(kinds=",".join(sub.kinds), systems=",".join(sub.systems), config=json.dumps(sub.config),
               enabled=True, created_ms=now_ms())
    sid = int(conn.execute(t.alert_subscriptions.insert().values(**row)).inserted_primary_key[0])  # type: ignore[index]
    audit(conn, actor=actor, action="create", entity="alert_subscriptions", key=str(sid), park=sub.park or "",
          after=shown({**row, "id": sid}))
    return get(conn, sid)


def get(conn: Connection, sid: int) -> dict[str, Any]:
    r = conn.execute(select(t.alert_subscriptions).where(t.alert_subscriptions.c.id == sid)).first()
    if r is None:
        raise NotFound(f"subscription {sid} does not exist; GET /api/v1/alert-subscriptions lists them")
    return shown(dict(r._mapping))


def listing(conn: Connection) -> list[dict[str, Any]]:
    return [shown(dict(r._mapping)) for r in conn.execute(select(t.alert_subscriptions)
                                                           .order_by(t.alert_subscriptions.c.id))]


def remove(conn: Connection, sid: int, actor: str) -> None:
    before = get(conn, sid)
    pending = conn.execute(select(t.alert_outbox.c.id).where(
        t.alert_outbox.c.subscription_id == sid, t.alert_outbox.c.delivered_ms.is_(None))).first()
    if pending is not None:
        raise RecordError(f"subscription {sid} still has undelivered alerts; disable it (or wait) before deleting")
    conn.execute(delete(t.alert_subscriptions).where(t.alert_subscriptions.c.id == sid))
    audit(conn, actor=actor, action="delete", entity="alert_subscriptions", key=str(sid),
          park=before.get("park") or "", before=before)


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A subscription as the API shows it: secrets masked (they never leave the platform again)."""
    cfg = row["config"] if isinstance(row["config"], dict) else json.loads(row["config"])
    row = {**row, "config": {k: ("***" if k in SECRET_FIELDS and v else v) for k, v in cfg.items()}}
    for k in ("kinds", "systems"):
        if isinstance(row.get(k), str):
            row[k] = [x for x in row[k].split(",") if x]
    return row
