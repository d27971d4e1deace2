"""Registry routes: parks and their points."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, ValidationError

from ingest.store import Store
from ingest.store.records import registry as reg
from parkmon.api.auth import Principal
from parkmon.api.deps import ActorDep, PrincipalDep, StoreDep, require_park
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import forbid, policy, visible_parks
from parkmon.common.metrics import System

router = APIRouter(prefix=API_V1, tags=["registry"])


class DeviceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    kind: str = ""
    system: System | None = None
    expected: bool = True
    production: bool = False
    sum_of: list[str] = []  # meter balance: the sub-meters this meter's flow is the sum of


@router.get("/parks", summary="Parks (园区列表): those the caller may see", openapi_extra=policy("scoped"))
def parks(store: StoreDep, who: PrincipalDep) -> list[dict[str, Any]]:
    seen = visible_parks(who, store)
    return [
        {"key": p.key, "name_zh": p.name_zh, "name_en": p.name_en, "park_class": p.park_class, "region": p.region}
        for p in store.parks() if seen is None or p.key in seen
    ]


@router.get("/parks/{park}/points", summary="Points of a park (测点列表)", openapi_extra=policy("park"))
def points(store: StoreDep, park: str, metric: str | None = None) -> list[dict[str, Any]]:
    require_park(store, park)
    found = store.points(park, metrics=[metric] if metric else None)
    return [
        {"id": p.id, "key": p.key, "enterprise": p.enterprise, "device": p.device, "point": p.point,
         "metric": p.metric, "unit": p.unit, "kind": p.kind, "label": p.label}
        for p in found
    ]


@router.get("/parks/{park}/gateways", summary="Gateways: online, buffer backlog, device health (网关状态)",
            openapi_extra=policy("park"))
def gateways(store: StoreDep, park: str) -> list[dict[str, Any]]:
    require_park(store, park)
    return [
        {"enterprise": g.enterprise, "gateway": g.gateway, "online": g.online, "status_ms": g.status_ms,
         "health_ms": g.health_ms, "health": json.loads(g.health_json) if g.health_json else None}
        for g in store.gateways(park)
    ]


@router.get("/parks/{park}/devices", summary="Devices with kind, system and expectation (设备台账)",
            openapi_extra=policy("park"))
def devices(store: StoreDep, park: str) -> list[dict[str, Any]]:
    return reg.devices(store, park)


@router.put("/parks/{park}/enterprises/{enterprise}/devices/{device}",
            summary="Register or edit a device (设备登记)",
            openapi_extra=policy("park", writers=("operator", "enterprise")))
def put_device(store: StoreDep, actor: ActorDep, who: PrincipalDep, park: str, enterprise: str, device: str,
               body: DeviceBody) -> dict[str, Any]:
    # an enterprise's balance may sum only its own meters: naming another's would read (and judge) them
    foreign = [r for r in body.sum_of if "/" in r and r.split("/", 1)[0] != enterprise]
    if who.role == "enterprise" and foreign:
        raise forbid(who, f"name other enterprises' devices in sum_of ({', '.join(foreign)}); a park-wide "
                          "balance is the operator's to register")
    try:
        entry = reg.DeviceEntry.model_validate({"id": device, **body.model_dump(exclude_none=True)})
    except ValidationError as exc:
        raise HTTPException(422, "; ".join(str(e["msg"]) for e in exc.errors())) from None
    return reg.put_device(store, park, enterprise, entry, actor)


@router.put("/parks/{park}", summary="Register or edit a park, enterprises and devices from a registry document "
            "(园区登记, the shape of a registry YAML file)",
            openapi_extra=policy("park", writers=("operator", "regulator")))
def put_park(store: StoreDep, actor: ActorDep, who: PrincipalDep, park: str, body: reg.RegistryFile) -> dict[str, int]:
    if body.park.key != park:
        raise HTTPException(422, f"the document describes park {body.park.key!r}, not {park!r}")
    _check_oversight(store, who, park, body.park)
    return reg.load(store, body, actor)


def _check_oversight(store: Store, who: Principal, park: str, entry: reg.ParkEntry) -> None:
    """Region and class decide which regulator oversees a park and what it is measured against (issue 20
    item 5): an operator may not change them (it would leave its regulator's oversight); a regulator sets
    them only within its own regions; an admin sets anything."""
    if who.role == "admin":
        return
    now = next((p for p in store.parks() if p.key == park), None)
    cls = "none" if entry.park_class == "general" else entry.park_class
    if who.role == "regulator":
        if entry.region not in who.regions:
            raise forbid(who, f"move park {park!r} to region {entry.region!r}: a regulator sets only its own "
                              f"regions ({', '.join(sorted(who.regions))})")
        return
    if now is None or (now.region, now.park_class) != (entry.region, cls):
        held = "unregistered" if now is None else f"region {now.region!r}, park_class {now.park_class!r}"
        raise forbid(who, f"set park {park!r}'s region or park_class (it is {held}; the document asks region "
                          f"{entry.region!r}, park_class {entry.park_class!r}): those are for the park's "
                          "regulator or an administrator; send the park's current values")
