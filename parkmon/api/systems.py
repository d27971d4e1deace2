"""The six systems at a glance (六系统): which expected devices report, and each system's live state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from ingest.records import economy, hazwaste, logistics, registry, safety, services
from parkmon.api.deps import EngineDep
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy
from parkmon.common.clock import now_ms
from parkmon.common.metrics import SYSTEM_LABELS, System

router = APIRouter(prefix=API_V1, tags=["six systems 六系统"])
YEAR_S = 366 * 86_400  # windows in seconds: longer ones overflow as milliseconds before now


@router.get("/parks/{park}/systems", summary="Coverage of the six systems: expected vs reporting (六系统接入情况)",
            openapi_extra=policy("park"))
def coverage(engine: EngineDep, park: str, stale_after_s: int = Query(900, ge=1, le=YEAR_S)) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return registry.coverage(conn, park, now_ms(), stale_after_s * 1000)


@router.get("/parks/{park}/systems/{system}", summary="A system's live state (系统实时状态)",
            openapi_extra=policy("park"))
def live(engine: EngineDep, park: str, system: System, since_s: int = Query(900, ge=1, le=YEAR_S)) -> dict[str, Any]:
    now = now_ms()
    zh, en = SYSTEM_LABELS[system]
    with engine.connect() as conn:
        out: dict[str, Any] = {"system": system.value, "name_zh": zh, "name_en": en, "at_ms": now,
                               "points": registry.latest(conn, park, system, now - since_s * 1000)}
        if system is System.SAFETY:
            out["open_incidents"] = safety.incidents(conn, park, status="open")
            out["hazard_sources"] = len(safety.register(conn, park))
        elif system is System.ENVIRONMENT:
            out["hazardous_waste"] = hazwaste.storage(conn, park, now)
            out["open_manifests"] = hazwaste.manifests(conn, park, open_only=True)
        elif system is System.LOGISTICS:
            out["gates"] = logistics.state(conn, park, now)
        elif system is System.ECONOMY:
            figs = economy.figures(conn, park)
            last = max((f["month"] for f in figs), default=None)
            out["latest_month"] = last
            out["figures"] = [f for f in figs if f["month"] == last]
        elif system is System.SERVICES:
            out["enterprises"] = len(services.directory(conn, park))
            out["open_requests"] = services.requests(conn, park, status="open")
            out["notices"] = services.notices_for(conn, park)[:10]
    return out
