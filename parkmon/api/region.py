"""A region's parks at a glance, for regulators (全景式): each park's line holds the registered indicators
that show in the overview (``in_overview``: the new-energy share against its target, energy and carbon,
pollutant compliance, the smart-park score), from the same feeds as the park pages, and the region's
figures made from them."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from analytics.indicators.base import IndicatorResult, registered
from parkmon.api.deps import PrincipalDep, StoreDep
from parkmon.api.indicators import Period, refusals, window
from parkmon.api.routers import API_V1
from parkmon.api.scorecard import context
from parkmon.api.tenancy import policy, visible_parks
from parkmon.common.clock import CHINA

router = APIRouter(prefix=API_V1, tags=["region 区域监管"])


@router.get("/regions", summary="Regions with their parks (区域列表)", openapi_extra=policy("scoped"))
def regions(store: StoreDep, who: PrincipalDep) -> dict[str, list[str]]:
    seen = visible_parks(who, store)
    out: dict[str, list[str]] = {}
    for p in store.parks():
        if seen is None or p.key in seen:
            out.setdefault(p.region or "", []).append(p.key)
    return out


@router.get("/regions/{region}/overview", summary="Every park of a region: share vs target, energy, "
            "carbon, compliance, smart-park score (区域总览)", openapi_extra=policy("region"))
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
    # the shares judged against the targets this API was given (parkmon api --targets), as the share route
    ctx = replace(context(request), share_settings=request.app.state.share_settings)
    shown = [ind for ind in registered() if ind.in_overview]
    results: dict[str, list[IndicatorResult]] = {ind.key: [] for ind in shown}
    rows: list[dict[str, Any]] = []
    for p in parks:
        row: dict[str, Any] = {"park": p.key, "name_zh": p.name_zh, "park_class": p.park_class}
        for ind in shown:
            params = ind.period_params(start, end, None)
            if params is None:
                continue
            with refusals():
                r = ind.feed(store, p.key, params, ctx)
            results[ind.key].append(r)
            row.update(ind.overview_fields(r))
        rows.append(row)
    out: dict[str, Any] = {"region": region, "period_start": start.isoformat(), "period_end": end.isoformat(),
                           "parks": rows}
    for ind in shown:
        out.update(ind.overview_region(results[ind.key]))
    return out
