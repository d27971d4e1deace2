"""The API's routers, one line each: :data:`ROUTERS` maps a name to ``"module:router"``. A router module
holds its routes and, on each route's decorator, who may use it (``openapi_extra=policy(...)``, the rules
in parkmon/api/tenancy.py); :func:`parkmon.api.app.create_app` serves every router listed here behind
authentication and that policy. Adding a router is its module and one line here.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute

from parkmon.api.tenancy import access_of
from parkmon.common.seams import resolve

API_V1 = "/api/v1"  # the prefix a router module gives its APIRouter to serve under the versioned API

# in the order the OpenAPI document lists them
ROUTERS: dict[str, str] = {
    "registry": "parkmon.api.registry:router",
    "readings": "parkmon.api.readings:router",
    "indicators": "parkmon.api.indicators:router",
    "energy_monitoring": "parkmon.api.energy_monitoring:router",  # key energy users' upload figures
    "storage": "parkmon.api.storage:router",
    "scorecard": "parkmon.api.scorecard:router",
    "region": "parkmon.api.region:router",
    "alerts": "parkmon.api.alerts:router",
    "systems": "parkmon.api.systems:router",
    "records": "parkmon.api.records:router",  # the six systems' record types (ingest/store/records)
    "health": "parkmon.api.health:router",
    "board": "parkmon.api.board:router",  # the live board's stream and snapshot
    "board_pages": "parkmon.api.board_pages:router",  # the live board's pages (/board/…) and sign-in
}


def load() -> list[APIRouter]:
    """The routers of :data:`ROUTERS`; ValueError naming a route that declares no policy, or a wrong one:
    refused when the app is built rather than served open."""
    out = []
    for name, target in ROUTERS.items():
        router = resolve(target)
        if not isinstance(router, APIRouter):
            raise ValueError(f"router {name!r}: {target} is not a fastapi.APIRouter")
        for route in router.routes:
            if isinstance(route, APIRoute):
                access_of(route)
        out.append(router)
    return out
