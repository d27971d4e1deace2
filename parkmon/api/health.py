"""Liveness for probes: open without a token. What costs more than a ping, or says more than "up", is for
signed-in callers: ``readings=true`` counts every reading (a full scan: issue 20 item 14), and an
administrator also sees the guard's counters (anonymous write attempts refused, item 19)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ingest.store import StoreError
from parkmon.api import guard
from parkmon.api.auth import OPEN, Auth, Principal
from parkmon.api.deps import StoreDep
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy

router = APIRouter(prefix=API_V1, tags=["health"])


async def _caller(request: Request, strict: bool) -> Principal | None:
    """Who asks, if the request carries a token; None: anonymous. ``strict``: a bad token is its 401 (else
    liveness answers as to anyone: a probe with a stale header must not see the service as down)."""
    auth: Auth | None = request.app.state.auth
    if auth is None:
        return OPEN
    if "authorization" not in request.headers:
        return None
    try:
        return await run_in_threadpool(auth.principal, request)
    except HTTPException:
        if strict:
            raise
        return None


@router.get("/health", summary="Liveness: the database answers (健康检查); ?readings=true adds the row count "
            "(needs a token)", openapi_extra=policy("public"))
async def health(request: Request, store: StoreDep, readings: bool = False) -> dict[str, Any]:
    # probes call this every few seconds: a ping, not a count over every reading (a full scan on a big park)
    who = await _caller(request, strict=readings)
    if readings and (who is None or who.role == "gateway"):
        raise HTTPException(401, "readings=true counts every reading: send 'Authorization: Bearer <token>' "
                                 "(any role but gateway), or drop readings=true for liveness",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        await run_in_threadpool(store.ping)
    except StoreError as exc:
        raise HTTPException(503, f"the database does not answer: {exc}") from None
    out: dict[str, Any] = {"status": "ok"}
    if readings:
        out["readings"] = await run_in_threadpool(store.count_readings)
    if who is not None and who is not OPEN and who.role == "admin":  # not with authentication off
        out.update(guard.counters(request.app))
    return out
