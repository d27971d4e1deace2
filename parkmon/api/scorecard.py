"""一平台两中心六系统 scorecard of a park, from the store and the records (facts gathered here; the
judgement is analytics.indicators.scorecard)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from analytics.indicators import scorecard as sc
from ingest.records import registry
from ingest.store import record_tables as t
from ingest.store import schema as s
from parkmon.api.deps import StoreDep, require_park
from parkmon.common.clock import DAY_MS, now_ms

router = APIRouter(tags=["indicators"])
@router.get("/parks/{park}/scorecard", summary="一平台两中心六系统: present, live, complete, and why not (建设评分)")
def scorecard(request: Request, store: StoreDep, park: str) -> dict[str, Any]:
    require_park(store, park)
    now = now_ms()
    gws = store.gateways(park)
    comp = store.completeness(park, now - DAY_MS, now)
    expected = sum(c.expected for c in comp)
    pids = [p.id for p in store.points(park)]
    rd, r1 = s.readings, s.readings_1m
    with store.engine.connect() as conn:
        dead = conn.execute(select(func.count()).select_from(s.dead_letters).where(
            s.dead_letters.c.received_ms >= now - DAY_MS,
            s.dead_letters.c.topic.like(f"%/{park}/%"))).scalar_one()
        newest = newest_1m = None
        if pids:
            newest = conn.execute(select(func.max(rd.c.ts)).where(rd.c.point_id.in_(pids),
                                                                  rd.c.ts >= now - DAY_MS)).scalar()
            newest_1m = conn.execute(select(func.max(r1.c.bucket)).where(r1.c.point_id.in_(pids),
                                                                         r1.c.bucket >= now - DAY_MS)).scalar()
        stored = bool(pids) and conn.execute(select(rd.c.point_id).where(rd.c.point_id.in_(pids)).limit(1)).first()
        backlog = conn.execute(select(func.count()).select_from(s.rollup_dirty)).scalar_one()
        systems = registry.coverage(conn, park, now)
        ih = s.indicator_hourly  # fed within two hours: the Grafana boards show this park live
        fed = conn.execute(select(ih.c.bucket).join(s.parks, s.parks.c.id == ih.c.park_id)
                           .where(s.parks.c.key == park, ih.c.bucket >= now - 2 * 3_600_000).limit(1)).first()
        overrides = conn.execute(select(func.count()).select_from(t.alert_rules)
                                 .where(t.alert_rules.c.park == park)).scalar_one()
    elements = [
        sc.platform(sc.PlatformFacts(len(gws), sum(g.online for g in gws),
                                     sum(c.received for c in comp) / expected if expected else None, int(dead))),
        sc.operations(sc.OperationsFacts(api=True, live_board=_board_served(request) or fed is not None,
                                         alert_rules=_rules_in_force(request) + int(overrides))),
        sc.storage(sc.StorageFacts(
            int(bool(stored)), None if newest is None else (now - newest) / 1000, int(backlog),
            None if newest is None or newest_1m is None else max(0.0, (newest - newest_1m - 60_000) / 1000))),
        *[sc.system(c) for c in systems],
    ]
    ind = sc.Scorecard()
    return {"key": ind.key, "name_zh": ind.name_zh, "name_en": ind.name_en, "unit": ind.unit, "park": park,
            "at_ms": now, "value": round(sc.score(elements), 4), "elements": [vars(e) for e in elements]}


def _board_served(request: Request) -> bool:
    """The built-in live board is part of this API (parkmon/api/board.py sets app.state.board)."""
    return getattr(request.app.state, "board", None) is not None


def _rules_in_force(request: Request) -> int:
    engine = request.app.state.alert_engine
    if engine is not None:
        return len(engine.rules)
    from analytics.alerts.rules import load_rules  # the defaults every park gets unless it overrides them

    return len(load_rules())
