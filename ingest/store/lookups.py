"""Named queries the HTTP API asks of the storage layer, so no SQL runs above it: whose a point is (the
tenancy policy; an alert's: ingest.store.alerts.whose) and each point's newest reading (the live board).
Functions over any :class:`~ingest.store.base.Store`; the SQL is the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select

from ingest.store import schema as s
from ingest.store.base import Store


def point_owner(store: Store, point_id: int) -> tuple[str, str] | None:
    """The park and enterprise keys of a point; None: no such point."""
    q = (select(s.parks.c.key, s.enterprises.c.key)
         .select_from(s.points.join(s.devices, s.devices.c.id == s.points.c.device_id)
                      .join(s.enterprises, s.enterprises.c.id == s.devices.c.enterprise_id)
                      .join(s.parks, s.parks.c.id == s.enterprises.c.park_id))
         .where(s.points.c.id == point_id))
    with store.engine.connect() as conn:
        row = conn.execute(q).first()
    return None if row is None else (str(row[0]), str(row[1]))


def latest_by_point(store: Store, park: str, since_ms: int) -> list[dict[str, Any]]:
    """Every point of the park with its device and its newest reading since ``since_ms`` (ts None: none):
    pid, metric, ent, dev, dev_name, dev_kind, ts, value, quality."""
    pt, dv, en, pk, rd = s.points, s.devices, s.enterprises, s.parks, s.readings
    newest = (select(func.max(rd.c.ts)).where(rd.c.point_id == pt.c.id, rd.c.ts >= since_ms)
              .correlate(pt).scalar_subquery())
    x = (select(pt.c.id.label("pid"), pt.c.metric, en.c.key.label("ent"), dv.c.key.label("dev"),
                dv.c.name.label("dev_name"), dv.c.kind.label("dev_kind"), newest.label("ts"))
         .select_from(pt.join(dv, dv.c.id == pt.c.device_id).join(en, en.c.id == dv.c.enterprise_id)
                      .join(pk, pk.c.id == en.c.park_id))
         .where(pk.c.key == park).subquery())
    q = (select(x, rd.c.value, rd.c.quality)
         .select_from(x.outerjoin(rd, and_(rd.c.point_id == x.c.pid, rd.c.ts == x.c.ts)))
         .order_by(x.c.ent, x.c.dev, x.c.pid))
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
