"""Shared dependencies (``Annotated`` aliases) of the routers."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Path, Query, Request

from ingest.store import Store
from ingest.store.records.spec import ID_MAX as ID_MAX
from ingest.store.records.spec import MS_MAX as MS_MAX
from parkmon.api.auth import Principal
from parkmon.api.tenancy import principal

# Bounds of numbers that reach SQL (ID_MAX, MS_MAX: the storage layer's): beyond them SQLite (64-bit) or
# PostgreSQL (INTEGER ids are 32-bit) fails with an overflow, a 500; with them the caller gets a 422.
RowId = Annotated[int, Path(ge=1, le=ID_MAX)]
QueryMs = Annotated[int | None, Query(ge=0, lt=MS_MAX, description="epoch ms")]


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


def require_park(store: Store, park: str) -> None:
    """404 with the way out, unless ``park`` is registered."""
    if park not in {p.key for p in store.parks()}:
        raise HTTPException(404, f"park {park!r} is not registered; GET /api/v1/parks lists the parks")


def actor_of(request: Request) -> str:
    """Who makes a write, for the audit log: the token's holder; with authentication off (demo, tests)
    the X-Parkmon-Actor header or "api"."""
    if getattr(request.app.state, "auth", None) is not None:
        return principal(request).name
    return (request.headers.get("x-parkmon-actor") or "api")[:128]


def get_actor(request: Request, x_parkmon_actor: Annotated[str | None, Header(max_length=128)] = None) -> str:
    return actor_of(request)


PrincipalDep = Annotated[Principal, Depends(principal)]


def caller_enterprise(request: Request) -> str | None:
    """The enterprise an enterprise token is bound to; None for every other caller (and auth off)."""
    who = principal(request)
    return who.enterprise if who.role == "enterprise" else None


CallerEnterpriseDep = Annotated[str | None, Depends(caller_enterprise)]


async def refuse_nul(request: Request) -> None:
    """422 for a NUL character (U+0000) in the path, the query or a JSON body: no parkmon text holds one,
    and PostgreSQL text cannot store one (it was a 500 from deep inside the handler)."""
    where = "path" if "\x00" in request.scope["path"] else next(
        (f"query parameter {k!r}" for k, v in request.query_params.multi_items() if "\x00" in k + v), None)
    if where is None and request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()  # read once by FastAPI already: cached
        if b"\\u0000" in body:
            with contextlib.suppress(ValueError):  # not JSON: FastAPI's own 422 says so
                where = _nul_at(json.loads(body), "body")
    if where is not None:
        raise HTTPException(422, f"{where} contains a NUL character (\\u0000); parkmon accepts none in any text")


def _nul_at(value: Any, at: str) -> str | None:
    """Where in a JSON document a text holds NUL (e.g. body.events[0].id), or None."""
    if isinstance(value, str):
        return at if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        key = f"{at}.{k}" if isinstance(k, str) else f"{at}[{k}]"
        found = at if isinstance(k, str) and "\x00" in k else _nul_at(v, key)
        if found:
            return found
    return None


ActorDep = Annotated[str, Depends(get_actor)]
