"""A key energy user's monthly upload figures (重点用能单位能耗在线监测: 15 min, day, month, with the platform's
quality checks) as JSON or the CSV file ``parkmon energy-monitoring export`` writes. The enterprise reads its
own (``?enterprise=<its key>``), the park's operator and regulator any of the park's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from analytics.indicators.base import Context, UnknownPark, load
from analytics.monitoring_export import file_name, render
from parkmon.api.deps import StoreDep
from parkmon.api.indicators import refusals
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy

router = APIRouter(prefix=API_V1, tags=["indicators"])


@router.get("/parks/{park}/energy-monitoring",
            summary="Key energy user's 15-min, daily and monthly energy with the upload checks (重点用能单位在线监测)",
            openapi_extra=policy("park", enterprise="query"), response_model=None)
def energy_monitoring(
    store: StoreDep, park: str,
    enterprise: Annotated[str, Query(description="the key energy user (an enterprise of the park)")],
    month: Annotated[str, Query(description="YYYY-MM, China calendar")],
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv (the upload file)")] = "json",
) -> dict[str, Any] | Response:
    ind = load("energy_monitoring")
    with refusals():
        p = ind.params.model_validate({"month": month, "enterprise": enterprise})
        try:
            answer: dict[str, Any] = ind.feed(store, park, p, Context()).to_json()
        except UnknownPark:
            raise
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
    if format == "json":
        return answer
    return Response(render(answer, "csv"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{file_name(answer, "csv")}"'})
