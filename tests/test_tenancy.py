"""Tenancy: each role sees only what is its own, through every route — indicators, readings, rollups,
alert lists and details, the board's stream — with parkmon tokens and with an OIDC provider's JWTs."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from ingest.store import Store, open_store
from ingest.store import record_tables as t
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.api.auth import Auth, OidcConfig, OidcVerifier, create_token, principal_of, revoke_token
from parkmon.common import wire

H = 3_600_000
T0 = 1_795_363_200_000  # 2026-11-23 00:00 China time


def write_two_parks(store: Store) -> list[tuple[str, str]]:
    """p1 (region 东区) with enterprises a and b, p2 (西区) with c, each a day of hourly counters from T0
    (import 100 kWh/h, PV 40 kWh/h), written as a gateway would; returns the (park, enterprise) pairs."""
    store.upsert_park("p1", "一号园区", "Park 1", "low_carbon", "东区")
    store.upsert_park("p2", "二号园区", "Park 2", "zero_carbon", "西区")
    pairs = [("p1", "a"), ("p1", "b"), ("p2", "c")]
    for park, ent in pairs:
        gw = f"gw-{ent}"
        store.upsert_meta(park, ent, gw, wire.Meta(1, gw, 0, {
            "grid.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", ""),
            "pv.gen": wire.PointMeta("pv.generation.energy", "kWh", "counter", "")}))
        samples: list[tuple[str, int, float | None, int]] = [
            s for h in range(25) for s in (("grid.imp", T0 + h * H, 100.0 * h, 0), ("pv.gen", T0 + h * H, 40.0 * h, 0))]
        store.write_batches([IncomingBatch(park, ent, gw, wire.Batch(1, gw, 1, T0, samples), T0)])
    return pairs


@pytest.fixture
def two_parks(tmp_path: Path) -> Iterator[Store]:
    """Park p1 (region 东区) with enterprises a and b, park p2 (region 西区) with enterprise c; each has a
    grid meter with a day of readings and one firing alert."""
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    store.create_schema()
    for park, ent in write_two_parks(store):
        with store.engine.begin() as conn:
            conn.execute(insert(t.alerts).values(
                rule_id="r", subject=f"{park}/{ent}/grid/imp", park=park, enterprise=ent, device="grid",
                metric="elec.import.energy", kind="threshold", system="energy", severity="warning", state="firing",
                since_ms=T0, fired_ms=T0, created_ms=T0, value=1.0, threshold=0.5, unit="kWh",
                detail=json.dumps({"name_zh": "购网电量过高", "name_en": "Grid import high"}, ensure_ascii=False)))
    store.refresh_rollups()
    yield store
    store.close()


def _tokens(store: Store) -> dict[str, str]:
    who = {"admin": principal_of("admin", "root"), "regulator": principal_of("regulator", "东区生态环境局", ["东区"]),
           "operator": principal_of("operator", "一号园区管委会", park="p1"),
           "a": principal_of("enterprise", "企业a", park="p1", enterprise="a"),
           "gateway": principal_of("gateway", "gw-a", park="p1", enterprise="a")}
    return {k: create_token(store, p) for k, p in who.items()}


def _client(store: Store, **auth: Any) -> TestClient:
    return TestClient(create_app(store, auth=Auth(store, cache_s=0, **auth)))


def _get(c: TestClient, token: str, url: str, **params: Any) -> Any:
    return c.get(url, params=params, headers={"Authorization": f"Bearer {token}"})


def _ids(store: Store) -> dict[str, Any]:
    from ingest.store import schema as s

    with store.engine.connect() as conn:
        alerts = {r.enterprise: r.id for r in conn.execute(select(t.alerts.c.id, t.alerts.c.enterprise))}
        pts = {r[0].split(".")[1]: r[1] for r in conn.execute(select(s.points.c.key, s.points.c.id))
               if r[0].endswith("grid.imp")}
    return {"alert": alerts, "point": pts}


def test_no_token_no_data_and_revocation_works(two_parks: Store) -> None:
    c = _client(two_parks)
    r = c.get("/api/v1/parks")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "parkmon api token create" in r.json()["detail"]
    assert _get(c, "pkm_not-a-token", "/api/v1/parks").status_code == 401
    assert c.get("/api/v1/health").status_code == 200  # liveness stays open for probes
    tokens = _tokens(two_parks)
    assert _get(c, tokens["operator"], "/api/v1/parks").status_code == 200
    with two_parks.engine.connect() as conn:
        tid = conn.execute(select(t.api_tokens.c.id).where(t.api_tokens.c.name == "一号园区管委会")).scalar_one()
    assert revoke_token(two_parks, tid)
    assert _get(c, tokens["operator"], "/api/v1/parks").status_code == 401
    with two_parks.engine.connect() as conn:  # only the hash is stored
        stored = [r.token_sha256 for r in conn.execute(select(t.api_tokens))]
    assert all(tok not in stored for tok in tokens.values())


def test_an_enterprise_sees_its_own_and_nothing_of_another(two_parks: Store) -> None:
    c, tok, ids = _client(two_parks), _tokens(two_parks)["a"], _ids(two_parks)
    assert [p["key"] for p in _get(c, tok, "/api/v1/parks").json()] == ["p1"]
    own = _get(c, tok, "/api/v1/parks/p1/indicators/new-energy-share", enterprise="a",
               start="2026-11-23T00:00:00+08:00", end="2026-11-24T00:00:00+08:00")
    assert own.status_code == 200 and own.json()["inputs"]["enterprise"] == "a"
    other = _get(c, tok, "/api/v1/parks/p1/indicators/new-energy-share", enterprise="b")
    assert other.status_code == 403 and "enterprise=a" in other.json()["detail"]
    assert _get(c, tok, "/api/v1/parks/p1/indicators/new-energy-share").status_code == 403  # park-wide
    assert _get(c, tok, "/api/v1/parks/p1/enterprises/a/devices/grid/latest").status_code == 200
    assert _get(c, tok, "/api/v1/parks/p1/enterprises/b/devices/grid/latest").status_code == 403
    assert _get(c, tok, f"/api/v1/points/{ids['point']['a']}/rollups", start_ms=T0, end_ms=T0 + 24 * H,
                level="1h").status_code == 200
    assert _get(c, tok, f"/api/v1/points/{ids['point']['b']}/rollups", start_ms=T0, end_ms=T0 + 24 * H,
                level="1h").status_code == 403
    assert [a["enterprise"] for a in _get(c, tok, "/api/v1/alerts").json()] == ["a"]
    assert _get(c, tok, f"/api/v1/alerts/{ids['alert']['b']}").status_code == 403
    assert _get(c, tok, f"/api/v1/alerts/{ids['alert']['a']}").status_code == 200
    assert {e["enterprise"] for e in _get(c, tok, "/api/v1/alert-events").json()} <= {"a"}
    assert _get(c, tok, "/api/v1/parks/p1/live/snapshot").status_code == 403  # the park's board
    assert _get(c, tok, "/api/v1/parks/p1/notices").status_code == 200  # the park's notices are for all
    assert _get(c, tok, "/api/v1/regions/东区/overview").status_code == 403
    r = c.post(f"/api/v1/alerts/{ids['alert']['b']}/acknowledge", json={"note": "x"},
               headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 403


def test_every_route_of_another_park_is_closed(two_parks: Store) -> None:
    """Whatever the route, a park operator and an enterprise of p1 get nothing of p2, and the enterprise
    nothing of enterprise b: checked on every GET route of the API that names a park or an enterprise."""
    tokens = _tokens(two_parks)
    app = create_app(two_parks, auth=Auth(two_parks, cache_s=0))
    c = TestClient(app)
    # every route as the API's own OpenAPI document lists it
    # (the board's HTML page is a shell without data, open to all: its stream is one of the routes checked)
    routes = [path for path, ops in app.openapi()["paths"].items()
              if "get" in ops and "{park}" in path and path != "/board/{park}"]
    assert len(routes) > 25
    fill = {"park": "p2", "enterprise": "c", "device": "grid", "system": "energy", "manifest_no": "m"}
    for path in routes:
        url = _fill(path, fill)
        for who in ("operator", "a"):
            r = _get(c, tokens[who], url, enterprise="c")
            assert r.status_code == 403, (who, url, r.status_code)
        if "{enterprise}" in path:
            url_b = _fill(path, {**fill, "park": "p1", "enterprise": "b"})
            assert _get(c, tokens["a"], url_b).status_code == 403, url_b
    for path in routes:  # the gateway's credentials read nothing at all
        url = _fill(path, {"park": "p1"})
        assert _get(c, tokens["gateway"], url).status_code == 403, url
    assert _get(c, tokens["gateway"], "/api/v1/parks").status_code == 403


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def test_operator_and_regulator_scopes(two_parks: Store) -> None:
    c, tokens, ids = _client(two_parks), _tokens(two_parks), _ids(two_parks)
    op, reg = tokens["operator"], tokens["regulator"]
    assert {a["park"] for a in _get(c, op, "/api/v1/alerts").json()} == {"p1"}
    assert len(_get(c, op, "/api/v1/alerts").json()) == 2
    assert _get(c, op, "/api/v1/parks/p1/indicators/new-energy-share").status_code == 200
    # the regulator: its region's parks, read-only, and their alerts to handle
    assert _get(c, reg, "/api/v1/regions").json() == {"东区": ["p1"]}
    assert _get(c, reg, "/api/v1/regions/东区/overview").status_code == 200
    assert _get(c, reg, "/api/v1/regions/西区/overview").status_code == 403
    assert _get(c, reg, "/api/v1/parks/p2/scorecard").status_code == 403
    h = {"Authorization": f"Bearer {reg}"}
    assert c.post(f"/api/v1/alerts/{ids['alert']['a']}/acknowledge", json={"note": "收到"}, headers=h).status_code \
        == 200
    assert c.post(f"/api/v1/alerts/{ids['alert']['c']}/acknowledge", json={"note": "x"}, headers=h).status_code \
        == 403
    notice = {"title": "停电通知", "body": "明日检修"}
    assert c.post("/api/v1/parks/p1/notices", json=notice, headers=h).status_code == 403
    # the operator writes its park, not another; every write is audited with the token's holder
    ho = {"Authorization": f"Bearer {op}"}
    assert c.post("/api/v1/parks/p1/notices", json=notice, headers=ho).status_code in (200, 201)
    assert c.post("/api/v1/parks/p2/notices", json=notice, headers=ho).status_code == 403
    with two_parks.engine.connect() as conn:
        api_rows = conn.execute(select(t.audit_log.c.actor, t.audit_log.c.entity_key.label("key"), t.audit_log.c.after)
                                .where(t.audit_log.c.entity == "api")).all()
    assert ("一号园区管委会", "/api/v1/parks/p2/notices", json.dumps({"status": 403})) in \
        [(r.actor, r.key, r.after) for r in api_rows]
    assert any(r.actor == "东区生态环境局" and r.key.endswith("/acknowledge") for r in api_rows)


class _Jwks:
    """An identity provider's JWKS endpoint on loopback (a local stand-in: no IdP runs here)."""

    def __init__(self, public_jwk: dict[str, Any]) -> None:
        body = json.dumps({"keys": [public_jwk]}).encode()

        class H(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_oidc_tokens_carry_role_and_scope(two_parks: Store) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = _Jwks({**jwk, "kid": "k1", "use": "sig", "alg": "RS256"})
    issuer = "https://idp.example.cn/realms/park"
    c = _client(two_parks, oidc=OidcVerifier(OidcConfig(issuer, "parkmon", jwks_url=jwks.url)))

    def sign(**claims: Any) -> str:
        base = {"iss": issuer, "aud": "parkmon", "sub": "u1", "preferred_username": "张三", "exp": time.time() + 300}
        return jwt.encode({**base, **claims}, key, algorithm="RS256", headers={"kid": "k1"})

    ent = sign(parkmon_role="enterprise", parkmon_park="p1", parkmon_enterprise="a")
    assert [p["key"] for p in _get(c, ent, "/api/v1/parks").json()] == ["p1"]
    assert _get(c, ent, "/api/v1/parks/p1/enterprises/b/devices/grid/latest").status_code == 403
    reg = sign(parkmon_role="regulator", parkmon_regions=["西区"])
    assert _get(c, reg, "/api/v1/regions").json() == {"西区": ["p2"]}
    assert _get(c, sign(aud="other", parkmon_role="admin"), "/api/v1/parks").status_code == 401
    assert _get(c, sign(exp=time.time() - 10, parkmon_role="admin"), "/api/v1/parks").status_code == 401
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"iss": issuer, "aud": "parkmon", "sub": "x", "exp": time.time() + 60,
                         "parkmon_role": "admin"}, other_key, algorithm="RS256", headers={"kid": "k1"})
    assert _get(c, forged, "/api/v1/parks").status_code == 401
    no_role = _get(c, sign(), "/api/v1/parks")
    assert no_role.status_code == 403 and "parkmon_role" in no_role.json()["detail"]
    jwks.server.shutdown()
