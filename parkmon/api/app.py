"""Application factory. Routers live one file per resource; the store comes in through a dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from analytics.targets import ShareSettings
from ingest.records.base import RecordError, audit
from ingest.store import Store
from parkmon.api import (
    alerts,
    board,
    deps,
    economy,
    environment,
    indicators,
    logistics,
    readings,
    region,
    registry,
    safety,
    scorecard,
    services,
    storage,
    systems,
    tenancy,
)


def create_app(store: Store, *, close_store: bool = False, share_settings: object | None = None,
               alert_engine: object | None = None, auth: tenancy.Auth | None = None) -> FastAPI:
    """``auth`` None: authentication off (the demo on loopback, tests); else every route but health needs a
    bearer token and answers only within the caller's scope (parkmon/api/tenancy.py)."""
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if close_store:
            store.close()

    app = FastAPI(
        title="parkmon API",
        description="智慧园区监测平台接口 · smart industrial park monitoring API",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.share_settings = share_settings
    app.state.alert_engine = alert_engine  # analytics.alerts.engine.AlertEngine when alerts run here
    app.state.board = board.LiveBoard(store, cast(ShareSettings | None, share_settings))
    app.state.auth = auth
    # authentication and the tenancy policy, for every route below; and no NUL in any text (deps.refuse_nul)
    guarded = [Depends(tenancy.authorize), Depends(deps.refuse_nul)]
    for module in (registry, readings, indicators, storage, scorecard, region, alerts,
                   systems, safety, environment, logistics, economy, services):
        app.include_router(module.router, prefix="/api/v1", dependencies=guarded)

    @app.middleware("http")
    async def audit_writes(request: Request, call_next: Any) -> Any:
        """Every write through the API is in the audit log: who, what, where, the answer's status."""
        response = await call_next(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.url.path.startswith("/api/"):
            park = str(request.path_params.get("park", ""))
            await run_in_threadpool(_audit_request, store, deps.actor_of(request), request.method,
                                    request.url.path, park, response.status_code)
        return response

    @app.exception_handler(RecordError)
    async def refused(_request: Request, exc: RecordError) -> JSONResponse:
        # a record the platform refuses: its own status (404 unknown park / enterprise, 409, 422)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    app.include_router(deps.health_router, prefix="/api/v1")
    # the built-in live board: /board/{park}, its stream under /api/v1, its script and ECharts under /static
    app.include_router(board.router, dependencies=guarded)
    app.mount("/static", board.static_files(), name="static")
    return app


def _audit_request(store: Store, actor: str, method: str, path: str, park: str, status: int) -> None:
    # the caller's values, fitted to the columns (park VARCHAR(64), action VARCHAR(32), no NUL on PostgreSQL):
    # else the audit row fails a request already answered, e.g. a 65-character park key: 500, not 404
    park = park if len(park) <= 64 and "\x00" not in park else ""
    with store.engine.begin() as conn:
        audit(conn, actor=actor, action=method.lower()[:32], entity="api", key=path.replace("\x00", "\\x00"),
              park=park, after={"status": status})
