"""Shared dependencies (``Annotated`` aliases) and the health route."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from sqlalchemy import Engine

from ..store import Store
from .tenancy import Principal, principal


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


def actor_of(request: Request) -> str:
    """Who makes a write, for the audit log: the token's holder; with authentication off (demo, tests)
    the X-Parkmon-Actor header or "api"."""
    if getattr(request.app.state, "auth", None) is not None:
        return principal(request).name
    return (request.headers.get("x-parkmon-actor") or "api")[:128]


def get_actor(request: Request, x_parkmon_actor: Annotated[str | None, Header(max_length=128)] = None) -> str:
    return actor_of(request)


PrincipalDep = Annotated[Principal, Depends(principal)]


ActorDep = Annotated[str, Depends(get_actor)]

health_router = APIRouter(tags=["health"])


@health_router.get("/health", summary="Liveness and row count (健康检查)")
def health(store: StoreDep) -> dict[str, Any]:
    return {"status": "ok", "readings": store.count_readings()}
