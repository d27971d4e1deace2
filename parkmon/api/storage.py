"""Storage routes: data completeness per gateway and day, and rollups of a point."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from ingest.store.rollups import DAY_MS, LEVELS
from parkmon.api.deps import MS_MAX, RowId, StoreDep, require_park
from parkmon.api.readings import iso
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy
from parkmon.common.clock import CHINA as CST
from parkmon.common.clock import now_ms

router = APIRouter(prefix=API_V1, tags=["storage"])
def _known_park(store: Any, park: str) -> None:
    require_park(store, park)


@router.get("/parks/{park}/completeness",
            summary="Data completeness per gateway, park and day (数据完整率: 按网关、园区、日)",
            openapi_extra=policy("park"))
def completeness(store: StoreDep, park: str, days: int = Query(7, ge=1, le=400)) -> dict[str, Any]:
    _known_park(store, park)
    today = LEVELS["1d"].floor(now_ms())
    rows = store.completeness(park, today - (days - 1) * DAY_MS, today + DAY_MS, daily=True)
    by_day: dict[int, list[int]] = {}
    gateways = []
    for c in rows:
        assert c.day_ms is not None
        t = by_day.setdefault(c.day_ms, [0, 0, 0])
        t[0], t[1], t[2] = t[0] + c.received, t[1] + c.expected, t[2] + c.samples
        gateways.append({"day": _day(c.day_ms), "enterprise": c.enterprise, "gateway": c.gateway,
                         "received": c.received, "expected": c.expected, "samples": c.samples,
                         "ratio": round(c.ratio, 4)})
    return {
        "park": park,
        "label": {"zh": "数据完整率", "en": "data completeness"},
        "note": "batches received / batches the gateways' sequence numbers say were sent; days in UTC+8",
        "days": [{"day": _day(d), "received": r, "expected": e, "samples": n, "ratio": round(r / e, 4) if e else 0.0}
                 for d, (r, e, n) in sorted(by_day.items())],
        "gateways": gateways,
    }


def _day(day_ms: int) -> str:
    return datetime.fromtimestamp(day_ms / 1000, tz=CST).date().isoformat()


@router.get("/points/{point_id}/rollups", summary="Rollups of a point: 1 min / 1 h / 1 day (分钟/小时/日汇总)",
            openapi_extra=policy("point"))
def point_rollups(store: StoreDep, point_id: RowId, width: Literal["1m", "1h", "1d"] = "1h",
                  start_ms: int = Query(..., ge=0, lt=MS_MAX, description="epoch ms, inclusive"),
                  end_ms: int = Query(..., ge=0, le=MS_MAX, description="epoch ms, exclusive")) -> dict[str, Any]:
    if end_ms <= start_ms:
        raise HTTPException(422, "end_ms must be after start_ms")
    if (end_ms - start_ms) // LEVELS[width].width_ms > 100_000:
        raise HTTPException(422, f"that range holds over 100 000 {width} buckets; use a wider width or a shorter range")
    rows = store.rollups([point_id], start_ms, end_ms, width)[point_id]
    return {"point_id": point_id, "width": width, "buckets": [
        {"bucket": iso(r.bucket_ms), "bucket_ms": r.bucket_ms, "n_all": r.n_all, "n": r.n, "mean": r.mean,
         "min": r.min, "max": r.max, "first": r.first, "last": r.last, "sum": r.sum} for r in rows]}
