"""The six systems at a glance (六系统): which expected devices report, and each system's live state with
what its record types add to it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from ingest.store.records import record_types, registry
from parkmon.api.deps import StoreDep
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy
from parkmon.common.clock import now_ms
from parkmon.common.metrics import SYSTEM_LABELS, System

router = APIRouter(prefix=API_V1, tags=["six systems 六系统"])
YEAR_S = 366 * 86_400  # windows in seconds: longer ones overflow as milliseconds before now


@router.get("/parks/{park}/systems", summary="Coverage of the six systems: expected vs reporting (六系统接入情况)",
            openapi_extra=policy("park"))
def coverage(store: StoreDep, park: str, stale_after_s: int = Query(900, ge=1, le=YEAR_S)) -> list[dict[str, Any]]:
    return registry.coverage(store, park, now_ms(), stale_after_s * 1000)


@router.get("/parks/{park}/systems/{system}", summary="A system's live state (系统实时状态)",
            openapi_extra=policy("park"))
def live(store: StoreDep, park: str, system: System, since_s: int = Query(900, ge=1, le=YEAR_S)) -> dict[str, Any]:
    now = now_ms()
    zh, en = SYSTEM_LABELS[system]
    out: dict[str, Any] = {"system": system.value, "name_zh": zh, "name_en": en, "at_ms": now,
                           "points": registry.latest(store, park, system, now - since_s * 1000)}
    for rt in record_types():
        if rt.system is system and rt.panel is not None:
            out.update(rt.panel(store, park, now))
    return out
