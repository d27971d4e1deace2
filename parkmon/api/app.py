"""Application factory. Routers live one file per resource, each registered by one line in
parkmon/api/routers.py with its access policy on its routes; the store comes in through a dependency."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from analytics.targets import ShareSettings
from ingest.store import Store
from ingest.store.common import RecordError, audit_request
from parkmon.api import board, deps, guard, routers, tenancy
from parkmon.api.auth import Auth


def create_app(store: Store, *, close_store: bool = False, share_settings: object | None = None,
               alert_engine: object | None = None, auth: Auth | None = None,
               max_body: int = guard.MAX_BODY, board_note: str = "") -> FastAPI:
    """``auth`` None: authentication off (the demo on loopback, tests); else every route but the public ones
    (health, the board's page) needs a bearer token and answers only within the caller's scope, as the route's
    policy says (parkmon/api/tenancy.py). ``max_body``: the largest request body in bytes (413 beyond).
    ``board_note``: a line the live boards show above everything (the demo says which clock its data carries)."""
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
    app.state.board_note = board_note
    app.state.refusals = guard.Refusals()
    # every route: authentication and the policy it declares (tenancy.authorize), and no NUL in any text
    guarded = [Depends(tenancy.authorize), Depends(deps.refuse_nul)]
    for router in routers.load():
        app.include_router(router, dependencies=guarded)

    @app.middleware("http")
    async def audit_writes(request: Request, call_next: Any) -> Any:
        """Every write through the API is in the audit log: who, what, where, the answer's status."""
        response = await call_next(request)
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.url.path.startswith("/api/"):
            return response
        if response.status_code == 401:
            # an anonymous attempt is counted, not audited: a row each let anyone flood the log (item 19)
            app.state.refusals.add(request.method, request.url.path)
        else:
            park = str(request.path_params.get("park", ""))
            await run_in_threadpool(functools.partial(
                audit_request, store, actor=deps.actor_of(request), method=request.method, path=request.url.path,
                park=park, status=response.status_code))
        return response

    @app.exception_handler(RecordError)
    async def refused(_request: Request, exc: RecordError) -> JSONResponse:
        # a record the platform refuses: its own status (404 unknown park / enterprise, 409, 422)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    # the live board's script and ECharts (its pages and stream are routers above)
    app.mount("/static", board.static_files(), name="static")
    # outermost of the app's own: body limit, authentication before any body is read, hardening headers
    app.add_middleware(guard.Guard, max_body=max_body)
    return app
