"""Shared dependencies (``Annotated`` aliases) and the health route."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from sqlalchemy import Engine

from ..store import Store


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


def require_park(store: Store, park: str) -> None:
    """404 with the way out, unless ``park`` is registered."""
    if park not in {p.key for p in store.parks()}:
        raise HTTPException(404, f"park {park!r} is not registered; GET /api/v1/parks lists the parks")


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.store.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_actor(x_parkmon_actor: Annotated[str | None, Header(max_length=128)] = None) -> str:
    """Who makes a write, for the audit log (until tokens say it: issue 10)."""
    return x_parkmon_actor or "api"


ActorDep = Annotated[str, Depends(get_actor)]

health_router = APIRouter(tags=["health"])


@health_router.get("/health", summary="Liveness and row count (健康检查)")
def health(store: StoreDep) -> dict[str, Any]:
    return {"status": "ok", "readings": store.count_readings()}
