"""The record-type seam (issue 19): a six-systems record type is one module — its table, its input model, its
operations over the Store with their HTTP surface and access policy as plain data, its part of its system's
panel — plus one line in ingest.store.records.RECORD_TYPES (and, in production, its Alembic migration; here
the test creates its table). A throw-away record type from a temporary package is served with its policy
per role and real tokens, its writes are audited, and the safety panel shows what it adds."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.store import Store
from ingest.store import records as record_registry
from ingest.store import schema as s
from tests import test_tenancy
from tests.test_tenancy import T0, _client, _tokens

two_parks = test_tenancy.two_parks  # its fixture: park p1 (region 东区) with enterprises a and b, park p2 with c

# the whole record type, in one module
DRILLS = '''
"""应急演练 — the emergency drills an enterprise holds: a record type nobody ships, to show the seam."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table, Text, select

from ingest.store import schema as s
from ingest.store.base import Store
from ingest.store.records.base import NotFound, audit, connection, enterprise_id, enterprise_keys, park_id, transaction
from ingest.store.records.spec import Http, Key, Op, RecordType, RowId
from parkmon.common.metrics import System

drills = Table(
    "{table}", s.metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("held_ms", BigInteger, nullable=False),
    Column("participants", Integer, nullable=False),
)


class Drill(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=100)]
    held: Annotated[int, Field(ge=946_684_800_000)]
    participants: Annotated[int, Field(ge=1, le=10_000)]


def put_drill(store: Store, park: str, enterprise: str, key: Key, d: Drill, actor: str) -> dict[str, Any]:
    with transaction(store) as conn:
        eid = enterprise_id(conn, park, enterprise)
        conn.execute(drills.delete().where(drills.c.enterprise_id == eid, drills.c.key == key))
        did = conn.execute(drills.insert().values(enterprise_id=eid, key=key, title=d.title, held_ms=d.held,
                                                  participants=d.participants).returning(drills.c.id)).scalar_one()
        audit(conn, actor=actor, action="create", entity="drills", key=f"{enterprise}/{key}", park=park,
              after=d.model_dump())
    return {"id": did, "enterprise": enterprise, "key": key, **d.model_dump()}


def recount(store: Store, park: str, drill_id: RowId,
            participants: Annotated[int, Http("body", embed=True, ge=1, le=10_000)], actor: str) -> dict[str, Any]:
    with transaction(store) as conn:
        ents = enterprise_keys(conn, park_id(conn, park))
        row = conn.execute(select(drills).where(drills.c.id == drill_id,
                                                drills.c.enterprise_id.in_(list(ents)))).first()
        if row is None:
            raise NotFound(f"drill {drill_id} is not in park {park}")
        conn.execute(drills.update().where(drills.c.id == drill_id).values(participants=participants))
        audit(conn, actor=actor, action="update", entity="drills", key=f"{ents[row.enterprise_id]}/{row.key}",
              park=park, before={"participants": row.participants}, after={"participants": participants})
    return {"id": drill_id, "participants": participants}


def listing(store: Store, park: str, enterprise: str | None = None,
            limit: Annotated[int, Http("query", ge=1, le=50)] = 50) -> list[dict[str, Any]]:
    with connection(store) as conn:
        ents = enterprise_keys(conn, park_id(conn, park))
        rows = conn.execute(select(drills).where(drills.c.enterprise_id.in_(list(ents)))
                            .order_by(drills.c.held_ms)).all()
    out = [{"id": r.id, "enterprise": ents[r.enterprise_id], "key": r.key, "title": r.title, "held": r.held_ms,
            "participants": r.participants} for r in rows]
    return [d for d in out if enterprise in (None, d["enterprise"])][:limit]


def panel(store: Store, park: str, now: int) -> dict[str, Any]:
    done = listing(store, park)
    return {"drills": len(done), "drill_participants": sum(d["participants"] for d in done)}


RECORD_TYPE = RecordType("drills", System.SAFETY, "drills 应急演练", tables=(drills,), panel=panel, ops=(
    Op("PUT", "/parks/{park}/enterprises/{enterprise}/drills/{key}", "Record an emergency drill (应急演练登记)",
       put_drill, writers=("operator", "enterprise")),
    Op("PATCH", "/parks/{park}/drills/{drill_id}", "Correct a drill's head count (更正参演人数)", recount),
    Op("GET", "/parks/{park}/drills", "Emergency drills (应急演练记录)", listing, enterprise="query"),
))
'''


@pytest.fixture
def plug_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_parks: Store) -> Iterator[Callable[[], Any]]:
    """Write the record type's module into a fresh package on sys.path, register it by one line of the table
    and create its table (what its migration would do); returns the record type."""
    package, table = f"throwaway_{uuid.uuid4().hex[:8]}", f"drills_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "drills.py").write_text(textwrap.dedent(DRILLS).replace("{table}", table), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))

    def plug() -> Any:
        monkeypatch.setitem(record_registry.RECORD_TYPES, "drills", f"{package}.drills:RECORD_TYPE")  # the one line
        (rt,) = [r for r in record_registry.record_types() if r.key == "drills"]
        for t in rt.tables:
            t.create(two_parks.engine)
        return rt

    yield plug
    if table in s.metadata.tables:  # the shared metadata forgets the throw-away table
        s.metadata.remove(s.metadata.tables[table])
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def _call(c: Any, token: str | None, method: str, url: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return c.request(method, url, headers=headers, **kw)


DRILL = {"title": "液氯泄漏应急演练", "held": T0, "participants": 30}


def test_a_record_type_is_one_module_and_one_registry_line(two_parks: Store, plug_in: Callable[[], Any]) -> None:
    tokens = _tokens(two_parks)
    assert _call(_client(two_parks), tokens["operator"], "GET", "/api/v1/parks/p1/drills").status_code == 404
    plug_in()
    c = _client(two_parks)

    # the OpenAPI document lists its routes with their summaries, policies and bounds
    doc = c.app.openapi()  # type: ignore[attr-defined]
    paths = doc["paths"]
    put = paths["/api/v1/parks/{park}/enterprises/{enterprise}/drills/{key}"]["put"]
    assert (put["summary"], put["tags"]) == ("Record an emergency drill (应急演练登记)", ["drills 应急演练"])
    assert put["x-parkmon-access"] == {"about": "park", "enterprise": "own", "writers": ["operator", "enterprise"]}
    assert {p["name"]: p["schema"].get("pattern") for p in put["parameters"] if p["in"] == "path"} == {
        "park": None, "enterprise": None, "key": "^[A-Za-z0-9_-]{1,64}$"}
    get = paths["/api/v1/parks/{park}/drills"]["get"]
    assert get["x-parkmon-access"] == {"about": "park", "enterprise": "query", "writers": ["operator"]}
    limit = next(p for p in get["parameters"] if p["name"] == "limit")
    assert (limit["in"], limit["schema"]["minimum"], limit["schema"]["maximum"], limit["schema"]["default"]) == (
        "query", 1, 50, 50)
    patch = paths["/api/v1/parks/{park}/drills/{drill_id}"]["patch"]
    # the store and the actor are the API's to give: only the actor's header shows (with auth off it names him)
    assert {(p["in"], p["name"]) for p in patch["parameters"]} == {
        ("path", "park"), ("path", "drill_id"), ("header", "x-parkmon-actor")}
    assert next(p for p in patch["parameters"] if p["name"] == "drill_id")["schema"]["minimum"] == 1
    body = doc["components"]["schemas"][patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                                        .rsplit("/", 1)[1]]
    assert (body["required"], body["properties"]["participants"]["minimum"],
            body["properties"]["participants"]["maximum"]) == (["participants"], 1, 10_000)

    # writes: the roles the route names, each within its scope
    url = "/api/v1/parks/p1/enterprises/{}/drills/{}"
    for who, ent, status in (("a", "a", 200), ("a", "b", 403), ("operator", "b", 200), ("regulator", "a", 403),
                             ("gateway", "a", 403), (None, "a", 401)):
        r = _call(c, tokens[who] if who else None, "PUT", url.format(ent, "d1"), json=DRILL)
        assert r.status_code == status, (who, ent, r.status_code, r.text)
    assert _call(c, tokens["a"], "PUT", url.format("a", "d1"), json=DRILL).json() == {
        "id": 3, "enterprise": "a", "key": "d1", **DRILL}  # put again: the row is replaced
    assert _call(c, tokens["operator"], "PUT", url.format("a", "bad key"), json=DRILL).status_code == 422
    assert _call(c, tokens["operator"], "PUT", url.format("a", "d2"), json={**DRILL, "participants": 0}
                 ).status_code == 422
    unknown = _call(c, tokens["operator"], "PUT", url.format("zz", "d1"), json=DRILL)
    assert unknown.status_code == 404 and "registered: a, b" in unknown.json()["detail"]
    assert _call(c, tokens["operator"], "PUT", "/api/v1/parks/p2/enterprises/c/drills/d1", json=DRILL
                 ).status_code == 403

    # an embedded body field, with its bounds; the default writers (the operator) only
    assert _call(c, tokens["operator"], "PATCH", "/api/v1/parks/p1/drills/2", json={"participants": 25}).json() \
        == {"id": 2, "participants": 25}
    assert _call(c, tokens["a"], "PATCH", "/api/v1/parks/p1/drills/3", json={"participants": 5}).status_code == 403
    for body, drill in (({"participants": 0}, 2), ({"participants": 25}, 0), (25, 2)):
        r = _call(c, tokens["operator"], "PATCH", f"/api/v1/parks/p1/drills/{drill}", json=body)
        assert r.status_code == 422, (body, drill, r.text)
    assert _call(c, tokens["operator"], "PATCH", "/api/v1/parks/p1/drills/99", json={"participants": 2}
                 ).status_code == 404

    # reads: park-wide for the operator and the region's regulator; an enterprise its own through ?enterprise=
    both = [{"id": 2, "enterprise": "b", "key": "d1", **DRILL, "participants": 25},
            {"id": 3, "enterprise": "a", "key": "d1", **DRILL}]
    both.sort(key=lambda d: d["id"])
    for who in ("operator", "regulator", "admin"):
        r = _call(c, tokens[who], "GET", "/api/v1/parks/p1/drills")
        assert sorted(r.json(), key=lambda d: d["id"]) == both, who
    assert _call(c, tokens["a"], "GET", "/api/v1/parks/p1/drills", params={"enterprise": "a"}).json() == [
        {"id": 3, "enterprise": "a", "key": "d1", **DRILL}]
    for who, params in (("a", {}), ("a", {"enterprise": "b"}), ("gateway", {})):
        assert _call(c, tokens[who], "GET", "/api/v1/parks/p1/drills", params=params).status_code == 403
    assert "enterprise=a" in _call(c, tokens["a"], "GET", "/api/v1/parks/p1/drills").json()["detail"]
    assert _call(c, tokens["operator"], "GET", "/api/v1/parks/p1/drills", params={"limit": 51}).status_code == 422


def test_its_writes_are_audited_and_its_system_panel_shows_it(two_parks: Store, plug_in: Callable[[], Any]) -> None:
    plug_in()
    c, tokens = _client(two_parks), _tokens(two_parks)
    assert _call(c, tokens["a"], "PUT", "/api/v1/parks/p1/enterprises/a/drills/d1", json=DRILL).status_code == 200
    assert _call(c, tokens["operator"], "PATCH", "/api/v1/parks/p1/drills/1", json={"participants": 32}
                 ).status_code == 200
    trail = _call(c, tokens["operator"], "GET", "/api/v1/parks/p1/audit", params={"entity": "drills"}).json()
    assert [{k: v for k, v in row.items() if k != "at_ms"} for row in trail] == [
        {"actor": "一号园区管委会", "action": "update", "entity": "drills", "key": "a/d1",
         "before": {"participants": 30}, "after": {"participants": 32}},
        {"actor": "企业a", "action": "create", "entity": "drills", "key": "a/d1", "before": None, "after": DRILL}]
    api = _call(c, tokens["operator"], "GET", "/api/v1/parks/p1/audit", params={"entity": "api"}).json()
    assert [(r["actor"], r["action"], r["key"], r["after"]) for r in api] == [
        ("一号园区管委会", "patch", "/api/v1/parks/p1/drills/1", {"status": 200}),
        ("企业a", "put", "/api/v1/parks/p1/enterprises/a/drills/d1", {"status": 200})]

    safety = _call(c, tokens["operator"], "GET", "/api/v1/parks/p1/systems/safety").json()
    # the built-in safety record type's part, then the throw-away's
    assert {k: safety[k] for k in ("open_incidents", "hazard_sources", "drills", "drill_participants")} == {
        "open_incidents": [], "hazard_sources": 0, "drills": 1, "drill_participants": 32}
    energy = _call(c, tokens["operator"], "GET", "/api/v1/parks/p1/systems/energy").json()
    assert "drills" not in energy and energy["system"] == "energy"
