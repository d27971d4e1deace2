"""安全应急: the emergency register (hazard sources) and the incident log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path

from ingest.records import safety
from parkmon.api.deps import MS_MAX, ActorDep, EngineDep, RowId
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy

router = APIRouter(prefix=API_V1, tags=["safety 安全应急"])


@router.put("/parks/{park}/enterprises/{enterprise}/hazard-sources/{key}",
            summary="Register a hazard source with contacts and response plan (危险源登记)",
            openapi_extra=policy("park", writers=("operator", "enterprise")))
def put_source(engine: EngineDep, actor: ActorDep, park: str, enterprise: str,
               key: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],  # the column is VARCHAR(64)
               src: safety.HazardSource) -> dict[str, Any]:
    with engine.begin() as conn:
        return safety.put_hazard_source(conn, park, enterprise, key, src, actor)


@router.get("/parks/{park}/hazard-sources", summary="The park's emergency register (应急登记)",
            openapi_extra=policy("park"))
def sources(engine: EngineDep, park: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return safety.register(conn, park)


@router.post("/parks/{park}/incidents", summary="Log an incident (事件上报)", openapi_extra=policy("park"))
def open_incident(engine: EngineDep, actor: ActorDep, park: str, inc: safety.Incident) -> dict[str, Any]:
    with engine.begin() as conn:
        return safety.open_incident(conn, park, inc, actor)


@router.patch("/parks/{park}/incidents/{incident_id}", summary="Close an incident (事件关闭)",
              openapi_extra=policy("park"))
def close_incident(engine: EngineDep, actor: ActorDep, park: str, incident_id: RowId,
                   closed: Annotated[int, Body(embed=True, ge=946_684_800_000, lt=MS_MAX)]) -> dict[str, Any]:
    with engine.begin() as conn:
        return safety.close_incident(conn, park, incident_id, closed, actor)


@router.get("/parks/{park}/incidents", summary="Incident log (事件记录)", openapi_extra=policy("park"))
def incidents(engine: EngineDep, park: str, status: Literal["open", "closed"] | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return safety.incidents(conn, park, status)
