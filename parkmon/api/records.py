"""The six systems' record types over HTTP: one route per operation a record type declares
(ingest/store/records/spec.py), built here because the storage layer imports no FastAPI. A route's
parameters are its operation's, with the store and the actor as dependencies and the operation's
``Http`` markers as FastAPI's ``Path``/``Query``/``Body``: FastAPI reads the handler's ``__signature__``.

``router`` is built when asked for (module ``__getattr__``), so a record type registered in
ingest.store.records.RECORD_TYPES is served by the next app without an edit here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, cast, get_args, get_origin

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from ingest.store.common import RecordError
from ingest.store.records import base, record_types
from ingest.store.records.spec import Http, Op, Upload
from parkmon.api.auth import Role
from parkmon.api.deps import ActorDep, CallerEnterpriseDep, StoreDep
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import About, EnterpriseReach, policy

_PARAMS: dict[str, Callable[..., Any]] = {"path": Path, "query": Query, "body": Body}


def build() -> APIRouter:
    """A router serving every registered record type's operations, and the audit trail of their writes."""
    router = APIRouter(prefix=API_V1)
    routes = [("audit 操作审计", base.AUDIT)] + [(rt.tag, op) for rt in record_types() for op in rt.ops]
    for tag, op in routes:
        extra = policy(cast(About, op.about), enterprise=cast(EnterpriseReach, op.enterprise),
                       writers=cast(tuple[Role, ...], op.writers))
        if op.body_schema is not None:
            extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": dict(op.body_schema)}}}
        router.add_api_route(op.path, endpoint(op), methods=[op.method], summary=op.summary, tags=[tag],
                             openapi_extra=extra)
    return router


def endpoint(op: Op) -> Callable[..., Any]:
    """A handler for ``op``: its parameters, the store and actor injected, markers made FastAPI's; a
    refusal that carries a structured ``detail`` answered with it as it is."""
    sig = inspect.signature(op.fn, eval_str=True)
    params: list[inspect.Parameter] = []
    raw: str | None = None  # the parameter that takes the request body as bytes
    uploads: list[str] = []
    for p in sig.parameters.values():
        if p.name == "store":
            annotation: Any = StoreDep
        elif p.name == "actor":
            annotation = ActorDep
        elif p.name == "caller_enterprise":
            annotation = CallerEnterpriseDep
        elif p.annotation is Upload:
            annotation = UploadFile
            uploads.append(p.name)
        elif _marker(p.annotation, "raw"):
            raw = p.name
            continue
        else:
            annotation = _fastapi(p.annotation)
        # keyword-only: FastAPI passes keywords, and defaults need not come last
        params.append(p.replace(annotation=annotation, kind=inspect.Parameter.KEYWORD_ONLY))

    def call(**kw: Any) -> Any:
        for name in uploads:
            f: UploadFile = kw[name]
            kw[name] = Upload(f.filename, f.file.read())
        try:
            return op.fn(**kw)
        except RecordError as exc:
            if exc.detail is None:
                raise  # the app's handler answers with the message and the error's status
            raise HTTPException(exc.status, exc.detail) from None

    handler: Callable[..., Any] = call
    if raw is not None:
        body_name = raw

        async def call_raw(_request: Request, **kw: Any) -> Any:
            kw[body_name] = await _request.body()
            return await run_in_threadpool(call, **kw)

        handler = call_raw
        params.append(inspect.Parameter("_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request))
    handler.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    handler.__name__ = handler.__qualname__ = op.fn.__name__  # FastAPI's operationId comes from it
    handler.__doc__ = op.description  # the OpenAPI description (FastAPI reads the docstring)
    return handler


def _marker(annotation: Any, source: str) -> Http | None:
    if get_origin(annotation) is Annotated:
        return next((m for m in get_args(annotation)[1:] if isinstance(m, Http) and m.source == source), None)
    return None


def _fastapi(annotation: Any) -> Any:
    """``Annotated[T, Http(...)]`` as ``Annotated[T, Path(...)]`` (or Query, Body); anything else as it is."""
    if get_origin(annotation) is not Annotated:
        return annotation
    inner, *meta = get_args(annotation)
    made = [_PARAMS[m.source](**m.options()) if isinstance(m, Http) else m for m in meta]
    return Annotated[(inner, *made)]


def __getattr__(name: str) -> Any:
    # parkmon.api.routers resolves "parkmon.api.records:router" for each app it builds
    if name == "router":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
