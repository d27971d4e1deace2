"""Readings routes: the latest value of every point of a device."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from parkmon.api.deps import StoreDep
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy
from parkmon.common import quality

router = APIRouter(prefix=API_V1, tags=["readings"])


def iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@router.get(
    "/parks/{park}/enterprises/{enterprise}/devices/{device}/latest",
    summary="Latest readings of a device (设备最新读数)",
    openapi_extra=policy("park"),
)
def latest(store: StoreDep, park: str, enterprise: str, device: str) -> dict[str, Any]:
    rows = store.latest(park, enterprise, device)
    if not rows:
        raise HTTPException(
            404, f"no readings for device {park}/{enterprise}/{device}: check the ids "
                 f"(GET /api/v1/parks/{park}/points) or whether its gateway is online",
        )
    return {
        "park": park, "enterprise": enterprise, "device": device,
        "points": [
            {"point": r.point, "metric": r.metric, "unit": r.unit, "label": r.label,
             "ts": iso(r.ts_ms), "value": r.value, "quality": r.quality,
             "quality_text": quality.describe(r.quality)}
            for r in rows
        ],
    }
