"""环境保护: hazardous waste records, transfer manifests and storage against its limits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from ingest.records import hazwaste
from parkmon.api.deps import MS_MAX, ActorDep, EngineDep, QueryMs
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy
from parkmon.common.clock import now_ms

router = APIRouter(prefix=API_V1, tags=["environment 环境保护"])


@router.post("/parks/{park}/hazwaste/records", summary="Record waste generated or used on site (危废产生/利用)",
             openapi_extra=policy("park"))
def add_record(engine: EngineDep, actor: ActorDep, park: str, rec: hazwaste.WasteRecord) -> dict[str, Any]:
    with engine.begin() as conn:
        return hazwaste.add_record(conn, park, rec, actor)


@router.post("/parks/{park}/hazwaste/manifests", summary="Record a transfer manifest (转移联单)",
             openapi_extra=policy("park"))
def add_manifest(engine: EngineDep, actor: ActorDep, park: str, m: hazwaste.Manifest) -> dict[str, Any]:
    with engine.begin() as conn:
        return hazwaste.add_manifest(conn, park, m, actor)


@router.patch("/parks/{park}/hazwaste/manifests/{manifest_no}", summary="Receipt of a manifest (接收确认)",
              openapi_extra=policy("park"))
def receive(engine: EngineDep, actor: ActorDep, park: str, manifest_no: str,
            received: Annotated[int, Body(embed=True, ge=946_684_800_000, lt=MS_MAX)]) -> dict[str, Any]:
    with engine.begin() as conn:
        return hazwaste.receive_manifest(conn, park, manifest_no, received, actor)


@router.get("/parks/{park}/hazwaste/manifests", summary="Transfer manifests (转移联单列表)",
            openapi_extra=policy("park"))
def manifests(engine: EngineDep, park: str, open_only: bool = False) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return hazwaste.manifests(conn, park, open_only)


@router.get("/parks/{park}/hazwaste/storage", summary="Stored hazardous waste and its limits (贮存情况)",
            openapi_extra=policy("park"))
def storage(engine: EngineDep, park: str, at_ms: QueryMs = None,
            max_storage_days: float = hazwaste.Limits.max_storage_days) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return hazwaste.storage(conn, park, at_ms or now_ms(), hazwaste.Limits(max_storage_days))
