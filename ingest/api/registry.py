"""Registry routes: parks and their points."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException

from .deps import StoreDep

router = APIRouter(tags=["registry"])


@router.get("/parks", summary="Parks (园区列表)")
def parks(store: StoreDep) -> list[dict[str, Any]]:
    return [
        {"key": p.key, "name_zh": p.name_zh, "name_en": p.name_en, "park_class": p.park_class, "region": p.region}
        for p in store.parks()
    ]


@router.get("/parks/{park}/points", summary="Points of a park (测点列表)")
def points(store: StoreDep, park: str, metric: str | None = None) -> list[dict[str, Any]]:
    if park not in {p.key for p in store.parks()}:
        raise HTTPException(404, f"park {park!r} is not registered; GET /api/v1/parks lists the parks")
    found = store.points(park, metrics=[metric] if metric else None)
    return [
        {"id": p.id, "key": p.key, "enterprise": p.enterprise, "device": p.device, "point": p.point,
         "metric": p.metric, "unit": p.unit, "kind": p.kind, "label": p.label}
        for p in found
    ]


@router.get("/parks/{park}/gateways", summary="Gateways: online, buffer backlog, device health (网关状态)")
def gateways(store: StoreDep, park: str) -> list[dict[str, Any]]:
    if park not in {p.key for p in store.parks()}:
        raise HTTPException(404, f"park {park!r} is not registered; GET /api/v1/parks lists the parks")
    return [
        {"enterprise": g.enterprise, "gateway": g.gateway, "online": g.online, "status_ms": g.status_ms,
         "health_ms": g.health_ms, "health": json.loads(g.health_json) if g.health_json else None}
        for g in store.gateways(park)
    ]
