"""交通物流: gate events pushed by the park's gate systems (format: docs/gate-events.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from ingest.records import logistics
from ingest.records.base import RecordError
from parkmon.api.deps import EngineDep, QueryMs, StoreDep
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy
from parkmon.common.clock import now_ms

router = APIRouter(prefix=API_V1, tags=["logistics 交通物流"])


@router.post("/parks/{park}/gate-events", summary="Push gate events (道闸过车记录上报)",
             openapi_extra=policy("park") | {
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "required": ["v", "events"], "properties": {
                         "v": {"const": 1}, "events": {"type": "array", "items": logistics.GateEvent.model_json_schema(
                             by_alias=True)}}}}}}})
async def push(request: Request, store: StoreDep, engine: EngineDep, park: str) -> dict[str, Any]:
    """Valid events are stored (a resent id counts as a duplicate); each bad one is answered with its
    index and reason and kept as a dead letter, so nothing else in the batch is lost."""
    body = await request.body()
    received = now_ms()
    where = f"http:/api/v1/parks/{park}/gate-events"
    try:
        dec = logistics.decode(body)
    except RecordError as exc:
        store.dead_letter(where, body, str(exc), received)
        raise HTTPException(422, str(exc)) from None
    with engine.begin() as conn:
        accepted, duplicates = logistics.store_events(conn, park, dec.events, received)
    for i, why in dec.rejected:
        store.dead_letter(where, body, f"event {i}: {why}", received)
    if dec.rejected and not dec.events:
        raise HTTPException(422, {"rejected": [{"index": i, "reason": why} for i, why in dec.rejected]})
    return {"accepted": accepted, "duplicates": duplicates,
            "rejected": [{"index": i, "reason": why} for i, why in dec.rejected]}


@router.get("/parks/{park}/logistics", summary="Vehicles in the park, dwell, hazardous goods (在园车辆)",
            openapi_extra=policy("park"))
def state(engine: EngineDep, park: str, at_ms: QueryMs = None) -> dict[str, Any]:
    with engine.connect() as conn:
        return logistics.state(conn, park, at_ms or now_ms())
