"""Liveness for probes: open without a token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from ingest.store import StoreError
from parkmon.api.deps import StoreDep
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy

router = APIRouter(prefix=API_V1, tags=["health"])


@router.get("/health", summary="Liveness: the database answers (健康检查); ?readings=true adds the row count",
            openapi_extra=policy("public"))
def health(store: StoreDep, readings: bool = False) -> dict[str, Any]:
    # probes call this every few seconds: a ping, not a count over every reading (a full scan on a big park)
    try:
        store.ping()
    except StoreError as exc:
        raise HTTPException(503, f"the database does not answer: {exc}") from None
    return {"status": "ok", "readings": store.count_readings()} if readings else {"status": "ok"}
