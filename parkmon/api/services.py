"""综合服务: the enterprise directory, notices and service requests."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from ingest.records import services
from parkmon.api.deps import ActorDep, EngineDep, RowId
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy

router = APIRouter(prefix=API_V1, tags=["services 综合服务"])


@router.put("/parks/{park}/enterprises/{enterprise}/profile", summary="Directory entry (企业名录信息)",
            openapi_extra=policy("park", writers=("operator", "enterprise")))
def put_profile(engine: EngineDep, actor: ActorDep, park: str, enterprise: str,
                p: services.Profile) -> dict[str, Any]:
    with engine.begin() as conn:
        return services.put_profile(conn, park, enterprise, p, actor)


@router.get("/parks/{park}/directory", summary="Enterprise directory (企业名录)",
            openapi_extra=policy("park", enterprise="read"))
def directory(engine: EngineDep, park: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return services.directory(conn, park)


@router.post("/parks/{park}/notices", summary="Publish a notice (发布通知)", openapi_extra=policy("park"))
def publish(engine: EngineDep, actor: ActorDep, park: str, n: services.Notice) -> dict[str, Any]:
    with engine.begin() as conn:
        return services.publish_notice(conn, park, n, actor)


@router.get("/parks/{park}/notices", summary="Notices, all or those one enterprise receives (通知公告)",
            openapi_extra=policy("park", enterprise="read"))
def notices(engine: EngineDep, park: str, enterprise: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return services.notices_for(conn, park, enterprise)


@router.post("/parks/{park}/service-requests", summary="Open a service request (服务申请)",
             openapi_extra=policy("park", enterprise="query", writers=("operator", "enterprise")))
def open_request(engine: EngineDep, actor: ActorDep, park: str, r: services.ServiceRequest) -> dict[str, Any]:
    with engine.begin() as conn:
        return services.open_request(conn, park, r, actor)


@router.patch("/parks/{park}/service-requests/{request_id}", summary="Update its status or reply (受理/答复)",
              openapi_extra=policy("park"))
def update_request(engine: EngineDep, actor: ActorDep, park: str, request_id: RowId,
                   u: services.RequestUpdate) -> dict[str, Any]:
    with engine.begin() as conn:
        return services.update_request(conn, park, request_id, u, actor)


@router.get("/parks/{park}/service-requests", summary="Service requests (服务申请列表)",
            openapi_extra=policy("park", enterprise="query"))
def requests(engine: EngineDep, park: str, status: Literal["open", "in_progress", "resolved", "closed"] | None = None,
             enterprise: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return services.requests(conn, park, status, enterprise)
