"""Application factory. Routers live one file per resource; the store comes in through a dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from analytics.targets import ShareSettings

from ..records.base import RecordError
from ..store import Store
from . import (
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
)


def create_app(store: Store, *, close_store: bool = False, share_settings: object | None = None,
               alert_engine: object | None = None) -> FastAPI:
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
    app.include_router(registry.router, prefix="/api/v1")
    app.include_router(readings.router, prefix="/api/v1")
    app.include_router(indicators.router, prefix="/api/v1")
    app.include_router(storage.router, prefix="/api/v1")
    app.include_router(scorecard.router, prefix="/api/v1")
    app.include_router(region.router, prefix="/api/v1")
    app.include_router(alerts.router, prefix="/api/v1")
    for system in (systems, safety, environment, logistics, economy, services):
        app.include_router(system.router, prefix="/api/v1")

    @app.exception_handler(RecordError)
    async def refused(_request: Request, exc: RecordError) -> JSONResponse:
        # a record the platform refuses: its own status (404 unknown park / enterprise, 409, 422)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    app.include_router(deps.health_router, prefix="/api/v1")
    # the built-in live board: /board/{park}, its stream under /api/v1, its script and ECharts under /static
    app.include_router(board.router)
    app.mount("/static", board.static_files(), name="static")
    return app
