"""What a six-systems record type declares about itself, as plain data the layers above read: its tables,
its operations with their HTTP surface (method, path, summary, who may use it), and what it adds to its
system's panel and coverage. The storage layer imports no FastAPI: parkmon/api/records.py turns an
:class:`Op` into a route and :class:`Http` markers into FastAPI's ``Path``/``Query``/``Body``.

An operation is a function whose first parameter is ``store`` (the :class:`~ingest.store.base.Store`);
one named ``actor`` receives who makes the write (the token's holder, for the audit log); one named
``caller_enterprise`` the enterprise an enterprise token is bound to (None for any other caller), so an
operation can keep an enterprise to its own name whatever the body or query says. Its other
parameters say where they come from by FastAPI's rules — a name in the path is a path parameter, a
pydantic model the JSON body, anything else the query — unless an :class:`Http` marker says otherwise
(``Annotated[int, Http("body", embed=True)]``), or the type is :class:`Upload` (a file sent as a form).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal

from sqlalchemy import Connection, Table

from ingest.store.base import Store
from parkmon.common.metrics import System

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

# Bounds of numbers that reach SQL: beyond them SQLite (64-bit) or PostgreSQL (INTEGER ids are 32-bit)
# fails with an overflow, a 500; with them the caller gets a 422 naming the parameter.
ID_MAX = 2**31 - 1
MS_MAX = 32_503_680_000_000  # 3000-01-01 UTC in epoch ms, the wire contract's limit
MS_MIN = 946_684_800_000  # 2000-01-01 UTC: a record time before it is a typo


@dataclass(frozen=True)
class Http:
    """Where an operation's parameter comes from over HTTP, and its bounds. ``raw``: the request body as
    bytes, which the operation decodes itself (:attr:`Op.body_schema` documents it)."""

    source: Literal["path", "query", "body", "raw"]
    pattern: str | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    embed: bool = False  # a body parameter as a field of a JSON object ({"closed": ...}), not the body itself
    description: str | None = None

    def options(self) -> dict[str, Any]:
        """The bounds that are set, as keyword arguments (FastAPI's Path/Query/Body take these names)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "source" and v is not None and v is not False:
                out[f.name] = v
        return out


@dataclass(frozen=True)
class Upload:
    """A file sent as multipart form data: its name as the sender gave it, and its bytes."""

    filename: str | None
    content: bytes


# parameter types several record types share
RowId = Annotated[int, Http("path", ge=1, le=ID_MAX)]
Key = Annotated[str, Http("path", pattern=r"^[A-Za-z0-9_-]{1,64}$")]  # the key columns are VARCHAR(64)
QueryMs = Annotated[int | None, Http("query", ge=0, lt=MS_MAX, description="epoch ms")]
BodyMs = Annotated[int, Http("body", embed=True, ge=MS_MIN, lt=MS_MAX)]  # {"closed": 1795363200000}


@dataclass(frozen=True)
class Op:
    """An operation served over HTTP under /api/v1. ``about``, ``enterprise``, ``writers``: its access
    policy, as parkmon.api.tenancy.policy takes it (whose the data is, what an enterprise reaches of a
    park-wide answer, the roles that may write)."""

    method: Method
    path: str
    summary: str
    fn: Callable[..., Any]
    about: str = "park"
    enterprise: str = "own"
    writers: tuple[str, ...] = ("operator",)
    description: str | None = None
    body_schema: Mapping[str, Any] | None = None  # the JSON schema of a raw body (an Http("raw") parameter)


@dataclass(frozen=True)
class RecordType:
    """One kind of the six systems' records, held by one module and registered by one line in
    ingest/store/records/__init__.py. ``tables``: what its Alembic migration creates. ``panel``: what it
    adds to ``GET /parks/{park}/systems/{system}`` (store, park, now in epoch ms). ``reporting``: for a
    system people feed, the enterprises (keys) that have done their part, which its coverage counts
    (connection, park row id, now)."""

    key: str
    system: System
    tag: str  # its group in the OpenAPI document, e.g. "safety 安全应急"
    tables: tuple[Table, ...] = ()
    ops: tuple[Op, ...] = ()
    panel: Callable[[Store, str, int], dict[str, Any]] | None = None
    reporting: Callable[[Connection, int, int], set[str]] | None = None
