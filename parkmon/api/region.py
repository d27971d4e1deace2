"""A region's parks at a glance, for regulators (全景式): each park's new-energy share against its
target, energy and carbon, pollutant compliance and smart-park score, from the same functions as the
park pages."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from analytics.park_compliance import compute_compliance
from analytics.park_energy import compute_energy
from analytics.park_share import compute_park_share, region_share
from parkmon.api.deps import PrincipalDep, StoreDep
from parkmon.api.indicators import Period, window
from parkmon.api.scorecard import scorecard
from parkmon.api.tenancy import visible_parks
from parkmon.common.clock import CHINA

router = APIRouter(tags=["region 区域监管"])


@router.get("/regions", summary="Regions with their parks (区域列表)")
def regions(store: StoreDep, who: PrincipalDep) -> dict[str, list[str]]:
    seen = visible_parks(who, store)
    out: dict[str, list[str]] = {}
    for p in store.parks():
        if seen is None or p.key in seen:
            out.setdefault(p.region or "", []).append(p.key)
    return out


@router.get("/regions/{region}/overview", summary="Every park of a region: share vs target, energy, "
            "carbon, compliance, smart-park score (区域总览)")
def overview(
    request: Request, store: StoreDep, region: str,
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: by period")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default: now")] = None,
    period: Annotated[Period, Query(description="used when start is not given (Asia/Shanghai calendar)")] = "month",
) -> dict[str, Any]:
    parks = [p for p in store.parks() if p.region == region]
    if not parks:
        known = sorted({p.region for p in store.parks() if p.region})
        raise HTTPException(404, f"no park is registered in region {region!r}; regions: {', '.join(known) or 'none'}")
    start, end = window(start, end, period, datetime.fromtimestamp(time.time(), tz=CHINA))
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    rows: list[dict[str, Any]] = []
    shares = []
    for p in parks:
        share = compute_park_share(store, p.key, s_ms, e_ms)
        shares.append({"value": share.value, "inputs": share.inputs})
        try:
            tce, carbon = compute_energy(store, p.key, s_ms, e_ms)
        except KeyError as exc:  # no grid emission factor for the period's year (published from 2021)
            raise HTTPException(422, str(exc.args[0])) from None
        comp = compute_compliance(store, p.key, s_ms, e_ms)
        rows.append({"park": p.key, "name_zh": p.name_zh, "park_class": p.park_class,
                     "new_energy_share": {"value": share.value, "target": share.target, "status": share.status,
                                          "gap": share.inputs.get("gap"), "completeness": share.completeness},
                     "comprehensive_energy_tce": tce.value, "carbon_per_tce": carbon.value,
                     "pollutant_compliance": comp["value"], "scorecard": scorecard(request, store, p.key)["value"]})
    tces = [r["comprehensive_energy_tce"] for r in rows if r["comprehensive_energy_tce"] is not None]
    return {"region": region, "period_start": start.isoformat(), "period_end": end.isoformat(),
            "parks": rows, "new_energy_share": region_share(shares),
            "parks_meeting_share_target": sum(r["new_energy_share"]["status"] == "met" for r in rows),
            "comprehensive_energy_tce": sum(tces) if tces else None}
