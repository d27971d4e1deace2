"""Shared dependencies (``Annotated`` aliases) and the health route."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from ..store import Store


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]

health_router = APIRouter(tags=["health"])


@health_router.get("/health", summary="Liveness and row count (健康检查)")
def health(store: StoreDep) -> dict[str, Any]:
    return {"status": "ok", "readings": store.count_readings()}
