"""Application factory. Routers live one file per resource; the store comes in through a dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ..store import Store
from . import deps, indicators, readings, registry, storage


def create_app(store: Store, *, close_store: bool = False, share_settings: object | None = None) -> FastAPI:
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
    app.include_router(registry.router, prefix="/api/v1")
    app.include_router(readings.router, prefix="/api/v1")
    app.include_router(indicators.router, prefix="/api/v1")
    app.include_router(storage.router, prefix="/api/v1")
    app.include_router(deps.health_router, prefix="/api/v1")
    return app
