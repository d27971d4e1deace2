"""经济运行: monthly output value, value added and production quantities per enterprise."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, UploadFile

from ingest.records import economy
from ingest.records.base import audit_trail
from parkmon.api.deps import ActorDep, EngineDep
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy

router = APIRouter(prefix=API_V1, tags=["economy 经济运行"])


@router.put("/parks/{park}/economy", summary="Set an enterprise's monthly figures (录入月度经济数据)",
            openapi_extra=policy("park"))
def put(engine: EngineDep, actor: ActorDep, park: str, fig: economy.MonthlyFigures) -> dict[str, Any]:
    with engine.begin() as conn:
        return economy.upsert(conn, park, fig, actor)


@router.get("/parks/{park}/economy", summary="Monthly figures (月度经济数据)",
            openapi_extra=policy("park", enterprise="query"))
def get(engine: EngineDep, park: str, start: str = "2000-01", end: str = "9999-12",
        enterprise: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return economy.figures(conn, park, start, end, enterprise)


@router.post("/parks/{park}/economy/import", summary="Import figures from CSV or Excel (批量导入)",
             openapi_extra=policy("park"))
async def import_file(engine: EngineDep, actor: ActorDep, park: str, file: UploadFile) -> dict[str, Any]:
    """All or nothing: any bad line refuses the file, and every bad line is listed with why."""
    name = Path(file.filename or "upload.csv").name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(await file.read())
        rows = economy.read_table(path)
    with engine.begin() as conn:
        res = economy.import_rows(conn, park, rows, actor, name)
    if res.errors:
        raise HTTPException(422, {"file": name, "lines": res.lines, "nothing_imported": True,
                                  "errors": [{"line": n, "reason": why} for n, why in res.errors]})
    return {"file": name, "lines": res.lines, "months": res.months}


@router.get("/parks/{park}/audit", summary="Audit trail of writes (操作审计)", openapi_extra=policy("park"))
def audit(engine: EngineDep, park: str, entity: str | None = None, key: str | None = None,
          limit: int = Query(200, ge=1)) -> list[dict[str, Any]]:  # LIMIT -1: PostgreSQL refuses it
    with engine.connect() as conn:
        return audit_trail(conn, park, entity, key, min(limit, 1000))
