"""Schemathesis against the API's own OpenAPI document (issue 10, "bad input everywhere"): every
operation gets schema-valid and schema-breaking requests, in process (ASGI), authentication off, over
stores (SQLite and PostgreSQL) holding a small registered park, and must never answer 5xx; its 2xx
answers must match the document. Path parameters are drawn half of the time from the park's real keys,
and a few bodies get what validators check beyond the schema, so the fuzzer reaches the handlers' own
code and the database, not only the 404 of an unknown park or the 422 of a wrong month.

Left out: the SSE stream ``/api/v1/parks/{park}/live`` (an endless response) and the HTML board pages
``/board/`` and ``/board/{park}`` (no JSON contract; tests/test_board.py covers them).

CI runs a fixed draw (derandomized, 8 fuzzed cases per operation besides the coverage phase's);
``FUZZ_N=60 pytest tests/test_api_fuzz.py`` runs a longer, random one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
import yaml
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from ingest.store import Store, open_store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire
from parkmon.common.clock import now_ms
from simulators.definition import DEFAULT_PARK
from tests.pg_server import Postgres

NOW = now_ms()
KNOWN = {  # real keys of the seeded park, by path parameter name
    "park": ["demo"], "enterprise": ["e01", "e02"], "device": ["grid", "pv1", "gd1"], "region": ["内蒙古自治区"],
    "key": ["tank1"], "manifest_no": ["M1-01"],
    "system": ["energy", "safety", "environment", "logistics", "economy", "services"],
}


def _openapi() -> dict[str, Any]:
    """The document as the app serves it (built from the routes; no store is touched)."""
    with tempfile.TemporaryDirectory() as tmp:
        st_ = open_store(f"sqlite:///{Path(tmp) / 'doc.db'}")
        try:
            return create_app(st_).openapi()
        finally:
            st_.close()


# the coverage phase also sends each method a path does not have: one (TRACE) is enough to reach the audit
CONFIG = schemathesis.Config.from_dict({"phases": {"coverage": {"unexpected-methods": ["trace"]}}})
schema = (schemathesis.openapi.from_dict(_openapi(), config=CONFIG)
          .exclude(path="/api/v1/parks/{park}/live")  # server-sent events: the response never ends
          .exclude(path_regex="^/board/"))  # HTML pages for browsers, no JSON contract


@schema.hook
def flatmap_path_parameters(_ctx: schemathesis.HookContext, params: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Each path parameter: the fuzzer's value or one the park really has (ids: the seeded rows' 1-3)."""
    if not params:
        return st.just(params)
    return st.fixed_dictionaries({
        k: st.sampled_from([v, *KNOWN.get(k, [1, 2, 3] if k.endswith("id") else [])]) for k, v in params.items()})


NUDGES: dict[tuple[str, str], Any] = {  # what validators check beyond the schema: half the bodies get it right
    ("POST", "/api/v1/alert-subscriptions"): {"channel": "webhook", "config": {"url": "https://alerts.park.example/hook",
                                                                              "secret": "fuzz-secret-0123456789"}},
    ("PUT", "/api/v1/parks/{park}/alert-rules"): [{"id": "fuzz-hot", "kind": "threshold", "name_zh": "功率高",
                                                   "name_en": "power high", "metric": "elec.active_power",
                                                   "threshold": 1000.0}],
    ("PUT", "/api/v1/parks/{park}/economy"): {"enterprise": "e01", "month": "2025-09"},
    ("POST", "/api/v1/parks/{park}/hazwaste/records"): {"enterprise": "e01", "waste_code": "900-041-49"},
    ("POST", "/api/v1/parks/{park}/hazwaste/manifests"): {"enterprise": "e01", "waste_code": "900-041-49"},
}


@schema.hook
def flatmap_body(ctx: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    assert ctx.operation is not None
    nudge = NUDGES.get((ctx.operation.method.upper(), ctx.operation.path))
    if nudge is None or not isinstance(body, type(nudge)):
        return st.just(body)
    return st.sampled_from([body, {**body, **nudge} if isinstance(nudge, dict) else nudge])


def _seed(store: Store) -> None:
    store.create_schema()
    client = TestClient(create_app(store))
    doc = yaml.safe_load(DEFAULT_PARK.read_text(encoding="utf-8"))
    assert client.put("/api/v1/parks/demo", json=doc).status_code == 200
    store.upsert_meta("demo", "e01", "gw1", wire.Meta(1, "gw1", NOW, {
        "grid.import": wire.PointMeta("elec.import.energy", "kWh", "counter", "正向有功总电能"),
        "grid.power": wire.PointMeta("elec.active_power", "kW", "instant", "总有功功率"),
        "pv1.generation": wire.PointMeta("pv.generation.energy", "kWh", "counter"),
    }, {"grid": "关口表"}))
    hour = 3_600_000
    samples: list[wire.Sample] = []
    for i in range(6):
        ts = NOW - (5 - i) * hour
        samples += [("grid.import", ts, 100.0 + 50 * i, 0), ("grid.power", ts, 800.0 + i, 0),
                    ("pv1.generation", ts, 20.0 * i, 0)]
    store.write_batches([IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, NOW, samples), NOW)])
    store.set_gateway_status("demo", "e01", "gw1", True, NOW)
    store.refresh_rollups()
    # one record of each system, so lists and updates have rows to work on
    for path, body in [
        ("/enterprises/e01/hazard-sources/tank1", {"name": "液氨储罐", "kind": "storage_tank",
                                                   "contact_name": "王工", "contact_phone": "13800000000",
                                                   "plan_ref": "YA-01"}),
        ("/enterprises/e01/profile", {"industry": "化工", "contact_phone": "0471-1234567"}),
        ("/economy", {"enterprise": "e01", "month": "2025-10", "output_value": 1000.0, "value_added": 300.0}),
    ]:
        r = client.put(f"/api/v1/parks/demo{path}", json=body)
        assert r.status_code == 200, (path, r.text)
    for path, body in [
        ("/incidents", {"enterprise": "e01", "occurred": NOW - hour, "kind": "leak", "title": "阀门泄漏"}),
        ("/notices", {"title": "停电通知", "body": "明日检修"}),
        ("/service-requests", {"enterprise": "e01", "category": "power", "title": "增容"}),
        ("/gate-events", {"v": 1, "events": [{"id": "g1", "gate": "east", "ts": NOW - hour, "plate": "蒙A12345",
                                              "class": "truck", "direction": "in"}]}),
        ("/hazwaste/records", {"enterprise": "e01", "ts": NOW - 2 * hour, "waste_code": "900-041-49",
                               "action": "generated", "quantity_t": 2.0}),
        ("/hazwaste/manifests", {"manifest_no": "M1-01", "enterprise": "e01", "waste_code": "900-041-49",
                                 "quantity_t": 1.0, "transporter": "运输公司", "receiver": "处置中心",
                                 "shipped": NOW - hour}),
    ]:
        r = client.post(f"/api/v1/parks/demo{path}", json=body)
        assert r.status_code == 200, (path, r.text)


@pytest.fixture(scope="module")
def sqlite_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'parkmon.db'}")
    _seed(store)
    # one event loop for all requests; an exception in a handler fails the test with its traceback
    with TestClient(create_app(store), raise_server_exceptions=True) as client:
        yield client
    store.close()


@pytest.fixture(scope="module")
def pg_client(postgres: Postgres) -> Iterator[TestClient]:
    store = open_store(os.environ.get("PARKMON_TEST_PG_DSN") or postgres.create_database())
    _seed(store)
    with TestClient(create_app(store), raise_server_exceptions=True) as client:
        yield client
    store.close()


def success_matches_its_schema(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                                case: schemathesis.Case[Any]) -> bool | None:
    """Response-schema conformance of the 2xx answers. (The errors are left out: the handlers answer
    ``{"detail": "text"}`` while FastAPI's document declares only its own 422 shape, a list.)"""
    return response_schema_conformance(ctx, response, case) if response.status_code < 300 else None


CHECKS: list[schemathesis.CheckFunction] = [not_a_server_error, success_matches_its_schema]
FUZZ = hypothesis.settings(max_examples=int(os.environ.get("FUZZ_N", 8)), deadline=None,
                           derandomize=not os.environ.get("FUZZ_N"),
                           suppress_health_check=list(hypothesis.HealthCheck))


def _call_and_validate(case: schemathesis.Case[Any], client: TestClient) -> None:
    """``case.call_and_validate`` through Starlette's (httpx) test client: schemathesis' own transport is
    built on requests, which breaks under urllib3-future (installed by grafana-client's niquests in the
    same environment, it replaces the urllib3 package requests imports)."""
    kw = case.as_transport_kwargs(base_url="http://testserver")
    if isinstance(kw.get("data"), bytes | str) and not kw.get("files"):
        kw["content"] = kw.pop("data")  # requests' raw body is httpx's content
    if kw.get("files"):  # requests sends any value as a part's content, httpx wants bytes or text
        kw["files"] = [(k, (v[0], _text(v[1]), *v[2:]) if isinstance(v, tuple) else _text(v))
                       for k, v in (kw["files"].items() if isinstance(kw["files"], dict) else kw["files"])]
    response = client.request(kw["method"], kw["url"], params=kw.get("params"), headers=kw.get("headers"),
                              json=kw.get("json"), content=kw.get("content"), data=kw.get("data"),
                              files=kw.get("files"))
    response.request.read()  # a multipart body is streamed; the checks read what was sent
    case.validate_response(response, checks=CHECKS)


def _text(v: Any) -> bytes | str:
    return v if isinstance(v, bytes | str) else str(v)


@schema.parametrize()
@FUZZ
def test_api_answers_bad_input_with_4xx_never_5xx(case: schemathesis.Case[Any], sqlite_client: TestClient,
                                                  pg_client: TestClient) -> None:
    """Each case against both stores: PostgreSQL is stricter (32-bit ids, VARCHAR lengths, no NUL in text)."""
    for client in (sqlite_client, pg_client):
        _call_and_validate(case, client)
